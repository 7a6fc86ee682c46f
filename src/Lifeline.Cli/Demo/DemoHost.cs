using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using Lifeline.AspNetCore;
using Lifeline.Cli.Serve;
using Lifeline.CloseCodes;
using Lifeline.Protocol;
using Lifeline.Session.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.Cli.Demo;

/// <summary>
/// The demo's server: one Kestrel host on 127.0.0.1 with a session endpoint (<c>/session</c>) and a plain endpoint
/// (<c>/plain</c>). Each streams numbers to its client and records the numbers it receives, in the shared ledger,
/// so the counts survive a restart of the host. While the demo sheds load, new upgrades are closed with 1013.
/// </summary>
internal sealed class DemoHost : IAsyncDisposable
{
    public const string SessionPath = "/session";
    public const string PlainPath = "/plain";

    private WebApplication? _app;

    private DemoHost(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Starts a host on <paramref name="port"/> (0: any free port), loading sessions from <paramref name="drainFile"/>.</summary>
    public static async Task<DemoHost> StartAsync(DemoLedger ledger, DemoTraffic traffic, string drainFile, int port, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        CommandHostLifetime.Use(builder.Services); // the command stops it; a second Ctrl-C must end the process
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, port));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        builder.Services.AddLifeline(o =>
        {
            // Demo timings: clients come back 1-2.5 s after a restart instead of 1-5 s.
            o.RestartHintMin = TimeSpan.FromSeconds(1);
            o.RestartHintMax = TimeSpan.FromMilliseconds(2500);
            o.DrainTimeout = TimeSpan.FromSeconds(5);
        });
        builder.Services.AddLifelineSessions(o => o.DrainFilePath = drainFile);
        var app = builder.Build();
        app.UseWebSockets();
        app.Use((context, next) => traffic.IsShedding && context.WebSockets.IsWebSocketRequest ? ShedAsync(context, traffic) : next(context));
        app.MapLifelineSession(SessionPath, (session, ct) => SessionStreamAsync(session, ledger, traffic, ct));
        app.MapLifeline(PlainPath, (connection, ct) => PlainStreamAsync(connection, ledger, traffic, ct));
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false); // a failed bind is retried with a new host: this one must not linger
            throw;
        }

        return new DemoHost(app, new Uri(app.Urls.First()).Port);
    }

    /// <summary>Whether <see cref="StartAsync"/> failed because something else listens on the port (Kestrel's wrapping).</summary>
    public static bool IsAddressInUse(Exception e) => e is IOException { InnerException: AddressInUseException };

    /// <summary>Closes the server's side of each client's connection with 1013 and a retry hint (the load shed).</summary>
    public static Task ShedAsync(IEnumerable<DemoClientRecord> clients, DemoTraffic traffic) =>
        Task.WhenAll(clients.Select(async client =>
        {
            var connection = client.ServerSession?.Connection ?? client.ServerConnection;
            if (connection is null)
            {
                return;
            }

            try
            {
                await connection.CloseAsync(CloseCode.TryAgainLater, RetryHint.AppendTo("Try Again Later", traffic.ShedHint())).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidOperationException or WebSocketException or OperationCanceledException or IOException)
            {
                // Already gone: nothing to shed.
            }
        }));

    /// <summary>A graceful stop: drain with 1012 and spread hints, save the sessions to the drain file, stop listening.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _app, null) is { } app)
        {
            try
            {
                await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                await app.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    /// <summary>Accepts the upgrade (with lifeline.v1 when offered, so a session client reads the code) and closes it with 1013.</summary>
    private static async Task ShedAsync(HttpContext context, DemoTraffic traffic)
    {
        var protocol = context.WebSockets.WebSocketRequestedProtocols.Contains(SessionProtocol.SubProtocol) ? SessionProtocol.SubProtocol : null;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(protocol).ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1), traffic.Time);
        try
        {
            await socket.CloseOutputAsync(CloseCode.TryAgainLater.ToWebSocketCloseStatus(), RetryHint.AppendTo("Try Again Later", traffic.ShedHint()), timeout.Token)
                .ConfigureAwait(false);
            var buffer = new byte[1024];
            while (socket.State == WebSocketState.CloseSent)
            {
                await socket.ReceiveAsync(buffer, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            socket.Abort();
        }
    }

    /// <summary>The session endpoint: records what the client sends, and streams numbers kept in the session's state bag.</summary>
    private static async Task SessionStreamAsync(LifelineSession session, DemoLedger ledger, DemoTraffic traffic, CancellationToken ct)
    {
        if (!session.State.TryGetValue("client", out var id))
        {
            id = session.Connection?.Query["client"].ToString();
            if (id is not null)
            {
                session.State.Set("client", id);
            }
        }

        var client = ledger.Find(id);
        if (client is null)
        {
            return;
        }

        client.ServerSession = session;
        var reader = Task.Run(async () =>
        {
            await foreach (var message in session.Messages.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                client.Up.RecordReceived(SequenceLog.Decode(message.Data));
            }
        }, CancellationToken.None);

        var next = session.State.TryGetValue("next", out var saved) ? int.Parse(saved, CultureInfo.InvariantCulture) : 1;
        try
        {
            using var timer = new PeriodicTimer(DemoTraffic.Tick, traffic.Time);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                if (!traffic.ShouldSend)
                {
                    continue;
                }

                var n = next;
                client.Down.RecordSent(n, traffic.Incident);
                // A push: it must not acknowledge a message the reader above holds but has not recorded yet.
                await session.PushAsync(SequenceLog.Encode(n), WebSocketMessageType.Binary,
                    bag => bag.Set("next", (n + 1).ToString(CultureInfo.InvariantCulture)), ct).ConfigureAwait(false);
                next = n + 1;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
            // The session ended, or the host is draining: the state bag says where the next host carries on.
        }

        await reader.ConfigureAwait(false);
    }

    /// <summary>The plain endpoint: records what the client sends, and streams the client's next numbers while this connection lasts.</summary>
    private static async Task PlainStreamAsync(LifelineConnection connection, DemoLedger ledger, DemoTraffic traffic, CancellationToken ct)
    {
        var client = ledger.Find(connection.Query["client"].ToString());
        if (client is null)
        {
            return;
        }

        client.ServerConnection = connection;
        var reader = Task.Run(async () =>
        {
            await foreach (var message in connection.Messages.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                client.Up.RecordReceived(SequenceLog.Decode(message.Data));
            }
        }, CancellationToken.None);

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, connection.Closing);
        try
        {
            using var timer = new PeriodicTimer(DemoTraffic.Tick, traffic.Time);
            while (await timer.WaitForNextTickAsync(linked.Token).ConfigureAwait(false))
            {
                if (!traffic.ShouldSend)
                {
                    continue;
                }

                var n = client.Down.Next();
                client.Down.RecordSent(n, traffic.Incident);
                await connection.SendAsync(SequenceLog.Encode(n), WebSocketMessageType.Binary, linked.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or WebSocketException or IOException)
        {
            // The connection is gone: whatever was sent into it and not delivered is lost, which is what plain mode means.
        }

        await reader.ConfigureAwait(false);
    }
}
