using System.Globalization;
using System.Net.WebSockets;
using Lifeline.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.Cli.Serve;

/// <summary>
/// The server behind <c>lifeline serve</c>: echo, broadcast and numbered-stream endpoints on Lifeline.AspNetCore,
/// a health endpoint and a small browser page, with the graceful restart on Ctrl-C or SIGTERM.
/// </summary>
internal static class DemoServer
{
    public const string EchoPath = "/ws";
    public const string BroadcastPath = "/broadcast";
    public const string StreamPath = "/stream";
    public const string HealthPath = "/health";

    public static WebApplication Build(string urls, Action<LifelineServerOptions>? configure = null, string? redis = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(urls);
        var lifeline = new LifelineServerOptions();
        configure?.Invoke(lifeline);

        // The host must outlast the drain, whatever --drain-timeout says.
        var shutdown = TimeSpan.FromSeconds(Math.Max(30, lifeline.DrainTimeout.TotalSeconds + 10));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = shutdown);
        builder.Services.AddLifeline(configure);
        if (redis is not null)
        {
            // Sessions (and their group sends) live in Redis, so a client resumes on any node of the same Redis.
            builder.Services.AddLifelineSessions();
            builder.Services.AddLifelineRedis(o => o.Configuration = redis);
        }
        var app = builder.Build();

        app.MapGet("/", () => Results.Content(BrowserPage.Html, "text/html; charset=utf-8"));
        app.MapLifelineHealth(HealthPath);
        app.MapLifeline(EchoPath, EchoAsync);
        app.MapLifeline(BroadcastPath, (connection, ct) => BroadcastAsync(connection, app.Services.GetRequiredService<LifelineConnectionRegistry>(), ct));
        app.MapLifeline(StreamPath, StreamAsync);
        return app;
    }

    private static async Task EchoAsync(LifelineConnection connection, CancellationToken cancellationToken)
    {
        await foreach (var message in connection.Messages.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            await connection.SendAsync(message.Data, message.Type, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task BroadcastAsync(LifelineConnection connection, LifelineConnectionRegistry registry, CancellationToken cancellationToken)
    {
        connection.JoinGroup("broadcast");
        await foreach (var message in connection.Messages.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            if (message.Type == WebSocketMessageType.Text)
            {
                await registry.SendToGroupAsync("broadcast", message.Text, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Sends "1", "2", ... every <c>interval</c> ms (default 1000, at least 10), up to <c>count</c> messages (default unbounded).</summary>
    private static async Task StreamAsync(LifelineConnection connection, CancellationToken cancellationToken)
    {
        var query = connection.Query;
        var interval = ReadInt(query, "interval", 1000, 10);
        var count = ReadInt(query, "count", int.MaxValue, 1);
        for (var i = 1; i <= count && !cancellationToken.IsCancellationRequested; i++)
        {
            await connection.SendTextAsync(i.ToString(CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
        }
    }

    private static int ReadInt(IQueryCollection query, string name, int fallback, int minimum) =>
        int.TryParse(query[name], NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum
            ? value
            : fallback;
}
