using System.Net;
using Lifeline.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>A Lifeline.AspNetCore server on real Kestrel at 127.0.0.1, mapped at /ws with a given handler (echo by default).</summary>
internal sealed class LifelineTestHost : IAsyncDisposable
{
    private WebApplication? _app;

    private LifelineTestHost(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public WebApplication App => _app ?? throw new InvalidOperationException("The host was stopped.");

    public LifelineServer Server => App.Services.GetRequiredService<LifelineServer>();

    public LifelineConnectionRegistry Registry => App.Services.GetRequiredService<LifelineConnectionRegistry>();

    public Uri Uri(string path = "/ws") => new($"ws://127.0.0.1:{Port}{path}");

    public static async Task<LifelineTestHost> StartAsync(
        Action<LifelineServerOptions>? configure = null,
        Func<LifelineConnection, CancellationToken, Task>? handler = null,
        int port = 0,
        Action<WebApplication>? map = null,
        Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(options =>
        {
            options.Listen(IPAddress.Loopback, port);
            options.Limits.MaxConcurrentConnections = null;
            options.Limits.MaxConcurrentUpgradedConnections = null;
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        services?.Invoke(builder.Services);
        builder.Services.AddLifeline(configure);
        var app = builder.Build();
        app.MapLifelineHealth();
        app.MapLifeline("/ws", handler ?? EchoAsync);
        map?.Invoke(app);
        await app.StartAsync();
        return new LifelineTestHost(app, new Uri(app.Urls.First()).Port);
    }

    public static async Task EchoAsync(LifelineConnection connection, CancellationToken cancellationToken)
    {
        await foreach (var message in connection.Messages.ReadAllAsync())
        {
            await connection.SendAsync(message.Data, message.Type, cancellationToken);
        }
    }

    /// <summary>Stops the host the way SIGTERM does: the drain runs first.</summary>
    public async Task StopAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}
