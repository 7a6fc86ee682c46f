using System.Globalization;
using System.Net.WebSockets;
using System.Text;
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
/// a health endpoint, the browser client (lifeline.js), the live dashboard and a small browser page, with the graceful restart on Ctrl-C or SIGTERM.
/// </summary>
/// <remarks>
/// <c>/ws</c> and <c>/stream</c> are session endpoints: a client that offers <c>lifeline.v1</c> gets a lossless session
/// (saved to the drain file on a graceful stop and resumed by the next start); other clients get plain mode, as before.
/// </remarks>
internal static class DemoServer
{
    public const string EchoPath = "/ws";
    public const string BroadcastPath = "/broadcast";
    public const string StreamPath = "/stream";
    public const string HealthPath = "/health";
    public const string ScriptPath = LifelineScriptEndpointRouteBuilderExtensions.DefaultScriptPath;
    public const string DashboardPath = LifelineDashboardEndpointRouteBuilderExtensions.DefaultDashboardPath;

    /// <summary>The state-bag key of <c>/stream</c>'s next number.</summary>
    public const string StreamNextKey = "next";

    public static WebApplication Build(string urls, Action<LifelineServerOptions>? configure = null, Action<LifelineSessionOptions>? configureSessions = null, string? redis = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        CommandHostLifetime.Use(builder.Services); // the command stops it; a second Ctrl-C must end the process
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(urls);
        var lifeline = new LifelineServerOptions();
        configure?.Invoke(lifeline);

        // The host must outlast the drain, whatever --drain-timeout says.
        var shutdown = TimeSpan.FromSeconds(Math.Max(30, lifeline.DrainTimeout.TotalSeconds + 10));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = shutdown);
        builder.Services.AddLifeline(configure);
        builder.Services.AddLifelineSessions(configureSessions);
        if (redis is not null)
        {
            // Sessions (and their group sends) live in Redis, so a client resumes on any node of the same Redis.
            builder.Services.AddLifelineRedis(o => o.Configuration = redis);
        }
        var app = builder.Build();

        app.MapGet("/", () => Results.Content(BrowserPage.Html, "text/html; charset=utf-8"));
        app.MapLifelineHealth(HealthPath);
        app.MapLifelineScript(ScriptPath);
        app.MapLifelineDashboard(DashboardPath);
        app.MapLifelineSession(EchoPath, EchoAsync);
        app.MapLifeline(BroadcastPath, (connection, ct) => BroadcastAsync(connection, app.Services.GetRequiredService<LifelineConnectionRegistry>(), ct));
        app.MapLifelineSession(StreamPath, StreamAsync);
        return app;
    }

    /// <summary>
    /// Echoes every message. In a session a message read here is acknowledged only once read, so what is unread at a drain
    /// is resent by the client to the next process and echoed there.
    /// </summary>
    private static async Task EchoAsync(LifelineSession session, CancellationToken cancellationToken)
    {
        await foreach (var message in session.Messages.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await session.SendAsync(message.Data, message.Type, cancellationToken).ConfigureAwait(false);
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

    /// <summary>
    /// Sends "1", "2", ... every <c>interval</c> ms (default 1000, at least 10), up to <c>count</c> messages (default unbounded;
    /// 0 sends none and closes normally). A value below its minimum is raised to it.
    /// The next number lives in the session's state and is updated with each send in one step, so a session resumed
    /// after a restart carries on from where the drain left it: no gap, no repeat.
    /// </summary>
    private static async Task StreamAsync(LifelineSession session, CancellationToken cancellationToken)
    {
        var query = session.Connection?.Query;
        var interval = ReadInt(query?["interval"], 1000, 10);
        var count = ReadInt(query?["count"], int.MaxValue, 0);
        var next = session.State.TryGetValue(StreamNextKey, out var saved) ? ReadInt(saved, 1, 1) : 1;
        for (var i = next; i <= count && !cancellationToken.IsCancellationRequested; i++)
        {
            var following = (i + 1L).ToString(CultureInfo.InvariantCulture);
            await session.SendAsync(Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture)), WebSocketMessageType.Text,
                state => state.Set(StreamNextKey, following), cancellationToken).ConfigureAwait(false);
            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A whole number from the query; absent or not a number: the fallback; below the minimum: the minimum.</summary>
    private static int ReadInt(string? text, int fallback, int minimum) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? Math.Max(value, minimum)
            : fallback;
}
