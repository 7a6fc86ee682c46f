using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using Lifeline.AspNetCore;
using Lifeline.Session;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>What the numbered-session handler saw, shared by every host of one test (restarts included).</summary>
internal sealed class NumberedServerLog
{
    public ConcurrentQueue<int> Received { get; } = new();

    public int ServerSendCount { get; init; }

    public int HandlerStarts;

    public int ResumedStarts;

    /// <summary>/gated: the handler reads nothing until this is set, then records each payload whole.</summary>
    public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ConcurrentQueue<byte[]> GatedPayloads { get; } = new();

    /// <summary>/answer-into-full-replay: the session's last delivered message after its answer failed.</summary>
    public TaskCompletionSource<long> DeliveredAfterAFailedAnswer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>/tracked: what its one SendAndWaitAckAsync returned.</summary>
    public TaskCompletionSource<bool> TrackedAcknowledged { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>/hold: the member's session, for tests that act on it from outside its handler.</summary>
    public LifelineSession? HeldSession;
}

/// <summary>A session server on real Kestrel at 127.0.0.1 with /numbered, /echo, /push and other session endpoints.</summary>
internal sealed class SessionTestHost : IAsyncDisposable
{
    private WebApplication? _app;

    private SessionTestHost(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public WebApplication App => _app ?? throw new InvalidOperationException("stopped");

    public LifelineSessionManager Sessions => App.Services.GetRequiredService<LifelineSessionManager>();

    public LifelineServer Server => App.Services.GetRequiredService<LifelineServer>();

    public Uri Uri(string path) => new($"ws://127.0.0.1:{Port}{path}");

    public static async Task<SessionTestHost> StartAsync(NumberedServerLog log, string drainFile, int port = 0,
        Action<LifelineSessionOptions>? sessions = null, Action<LifelineServerOptions>? server = null, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        services?.Invoke(builder.Services);
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, port));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        builder.Services.AddLifeline(o =>
        {
            o.RestartHintMin = TimeSpan.FromMilliseconds(50);
            o.RestartHintMax = TimeSpan.FromMilliseconds(200);
            o.DrainTimeout = TimeSpan.FromSeconds(5);
            server?.Invoke(o);
        });
        builder.Services.AddLifelineSessions(o =>
        {
            o.DrainFilePath = drainFile;
            sessions?.Invoke(o);
        });
        var app = builder.Build();
        app.MapLifelineSession("/numbered", (session, ct) => NumberedAsync(session, log, ct));
        app.MapLifelineSession("/echo", EchoAsync);
        app.MapLifelineSession("/throwing-callback", async (session, ct) =>
        {
            // An application callback on the handler's token that throws when the session ends; the handler then returns.
            ct.Register(() => throw new InvalidOperationException("callback failed"));
            await session.Messages.ReadAsync(ct);
        });
        app.MapLifelineSession("/slow-echo", SlowEchoAsync);
        app.MapLifelineSession("/silent", (session, ct) => Task.Delay(Timeout.Infinite, ct)); // never reads, so never acknowledges
        app.MapLifelineSession("/tracked", async (session, ct) =>
        {
            // Never reads, so never acknowledges what the client sends; once the gate opens, sends one message and
            // records whether the client acknowledged it (the wait has no token: the session's end answers it).
            await log.Gate.Task.WaitAsync(ct);
            log.TrackedAcknowledged.TrySetResult(await session.SendAndWaitAckAsync(Number(1)));
            await Task.Delay(Timeout.Infinite, ct);
        });
        app.MapLifelineSession("/push", PushAsync);
        app.MapLifelineSession("/gated-push", async (session, ct) =>
        {
            await log.Gate.Task.WaitAsync(ct); // then like /push
            await PushAsync(session, ct);
        });
        app.MapLifelineSession("/group-pusher", async (session, ct) =>
        {
            // Member of group "g" whose handler sends 32 KiB messages of its own until its session can send no more.
            session.JoinGroup("g");
            var payload = new byte[32 * 1024];
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    await session.SendAsync(payload, WebSocketMessageType.Binary, ct);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
            {
                // The session ended or was closed under the send.
            }

            await Task.Delay(Timeout.Infinite, ct);
        });
        app.MapLifelineSession("/hold", async (session, ct) =>
        {
            // Member of group "held": reads one message and works on it until the gate opens, then reads on.
            session.JoinGroup("held");
            Volatile.Write(ref log.HeldSession, session);
            var first = await session.Messages.ReadAsync(ct);
            log.GatedPayloads.Enqueue(first.Data.ToArray());
            await log.Gate.Task.WaitAsync(ct);
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                log.GatedPayloads.Enqueue(message.Data.ToArray());
            }
        });
        app.MapLifelineSession("/answer-into-full-replay", async (session, ct) =>
        {
            // With a replay buffer of one message in Fail mode (set by the test): the push, after the first message was read
            // (so no frame of the client's can acknowledge it before the answer), fills it, and the answer cannot be
            // numbered. What the session counts as delivered then goes to the log.
            var first = await session.Messages.ReadAsync(ct);
            await session.PushAsync("push"u8.ToArray(), WebSocketMessageType.Binary, ct);
            try
            {
                await session.SendAsync(first.Data, first.Type, ct);
            }
            catch (ReplayBufferFullException)
            {
                log.DeliveredAfterAFailedAnswer.TrySetResult(session.Inbound.LastDelivered);
            }

            await Task.Delay(Timeout.Infinite, ct);
        });
        app.MapLifelineSession("/bye-at-gate", async (session, ct) =>
        {
            // A job's handler: when the gate opens it sends its last answer and returns.
            await log.Gate.Task.WaitAsync(ct);
            await session.SendTextAsync("bye", CancellationToken.None);
        });
        app.MapLifelineSession("/ends-at-gate", (session, ct) => log.Gate.Task.WaitAsync(ct)); // returns (ends the session) when the gate opens
        app.MapLifelineSession("/gated", async (session, ct) =>
        {
            await log.Gate.Task.WaitAsync(ct);
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                log.GatedPayloads.Enqueue(message.Data.ToArray());
            }
        });
        app.MapLifelineSession("/group", async (session, ct) =>
        {
            session.JoinGroup("g");
            await Task.Delay(Timeout.Infinite, ct);
        });
        await app.StartAsync();
        return new SessionTestHost(app, new Uri(app.Urls.First()).Port);
    }

    public static byte[] Number(int n)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, n);
        return bytes;
    }

    public static int Number(ReadOnlyMemory<byte> data) => BinaryPrimitives.ReadInt32BigEndian(data.Span);

    /// <summary>Records every client message and sends 1..N, keeping its position in the session's state.</summary>
    private static async Task NumberedAsync(LifelineSession session, NumberedServerLog log, CancellationToken ct)
    {
        Interlocked.Increment(ref log.HandlerStarts);
        if (session.IsResumed)
        {
            Interlocked.Increment(ref log.ResumedStarts);
        }

        var reader = Task.Run(async () =>
        {
            await foreach (var message in session.Messages.ReadAllAsync(CancellationToken.None))
            {
                log.Received.Enqueue(Number(message.Data));
            }
        }, CancellationToken.None);

        var next = session.State.TryGetValue("next", out var saved) ? int.Parse(saved, System.Globalization.CultureInfo.InvariantCulture) : 1;
        for (var i = next; i <= log.ServerSendCount && !ct.IsCancellationRequested; i++)
        {
            var n = i;
            try
            {
                await session.SendAsync(Number(n), WebSocketMessageType.Binary,
                    bag => bag.Set("next", (n + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)), ct);
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
            {
                break;
            }

            if (n % 50 == 0)
            {
                await Task.Yield();
            }
        }

        await reader; // the session's end (or a drain) completes Messages
    }

    /// <summary>Sends a message every 20 ms and never reads, so it never acknowledges what the client sends.</summary>
    private static async Task PushAsync(LifelineSession session, CancellationToken ct)
    {
        for (var n = 1; !ct.IsCancellationRequested; n++)
        {
            try
            {
                await session.SendAsync(Number(n), WebSocketMessageType.Binary, ct);
                await Task.Delay(20, ct);
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
            {
                return;
            }
        }
    }

    private static async Task EchoAsync(LifelineSession session, CancellationToken ct)
    {
        await foreach (var message in session.Messages.ReadAllAsync(CancellationToken.None))
        {
            await session.SendAsync(message.Data, message.Type, ct);
        }
    }

    /// <summary>Echoes each message after 30 ms of "work" that no token interrupts, as a handler finishing its job does.</summary>
    private static async Task SlowEchoAsync(LifelineSession session, CancellationToken ct)
    {
        await foreach (var message in session.Messages.ReadAllAsync(CancellationToken.None))
        {
            await Task.Delay(30, CancellationToken.None);
            await session.SendAsync(message.Data, message.Type, CancellationToken.None);
        }
    }

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
