using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using Lifeline.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.Benchmarks;

/// <summary>What the /numbered handler received, shared by every host of one run (restarts included).</summary>
internal sealed class NumberedLog
{
    public ConcurrentQueue<int> Received { get; } = new();

    public int ServerSendCount { get; init; }

    public int HandlerStarts;

    public int RestoredStarts;
}

/// <summary>
/// A real Kestrel server on 127.0.0.1 with <c>MapLifelineSession</c> endpoints (FramedServer does not speak the session
/// protocol): <c>/numbered</c> (receives numbers, sends 1..N keeping its position in the state bag), <c>/blast?n=&amp;size=</c>
/// (sends n messages of size bytes) and <c>/sink</c> (reads and discards).
/// </summary>
internal sealed class SessionServer : IAsyncDisposable
{
    private WebApplication? _app;

    private SessionServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public LifelineSessionManager Sessions => (_app ?? throw new InvalidOperationException("stopped")).Services.GetRequiredService<LifelineSessionManager>();

    public Uri Uri(string path) => new($"ws://127.0.0.1:{Port}{path}");

    public static async Task<SessionServer> StartAsync(string drainFile, NumberedLog? log = null, int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, port));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.Services.AddLifeline(o =>
        {
            o.RestartHintMin = TimeSpan.FromMilliseconds(50);
            o.RestartHintMax = TimeSpan.FromMilliseconds(200);
            o.DrainTimeout = TimeSpan.FromSeconds(5);
        });
        builder.Services.AddLifelineSessions(o => o.DrainFilePath = drainFile);
        var app = builder.Build();
        app.MapLifelineSession("/numbered", (session, ct) => NumberedAsync(session, log ?? new NumberedLog(), ct));
        app.MapLifelineSession("/blast", BlastAsync);
        app.MapLifelineSession("/sink", SinkAsync);
        await app.StartAsync();
        return new SessionServer(app, new Uri(app.Urls.First()).Port);
    }

    public static byte[] Number(int n)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, n);
        return bytes;
    }

    public static int Number(ReadOnlyMemory<byte> data) => BinaryPrimitives.ReadInt32BigEndian(data.Span);

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

    private static async Task NumberedAsync(LifelineSession session, NumberedLog log, CancellationToken ct)
    {
        Interlocked.Increment(ref log.HandlerStarts);
        if (session.IsResumed)
        {
            Interlocked.Increment(ref log.RestoredStarts);
        }

        var reader = Task.Run(async () =>
        {
            await foreach (var message in session.Messages.ReadAllAsync(CancellationToken.None))
            {
                log.Received.Enqueue(Number(message.Data));
            }
        }, CancellationToken.None);

        var next = session.State.TryGetValue("next", out var saved) ? int.Parse(saved, CultureInfo.InvariantCulture) : 1;
        for (var i = next; i <= log.ServerSendCount && !ct.IsCancellationRequested; i++)
        {
            var n = i;
            try
            {
                await session.SendAsync(Number(n), WebSocketMessageType.Binary, bag => bag.Set("next", (n + 1).ToString(CultureInfo.InvariantCulture)), ct);
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

        await reader;
    }

    private static async Task BlastAsync(LifelineSession session, CancellationToken ct)
    {
        var query = session.Connection?.Query;
        var n = int.Parse(query?["n"].ToString() ?? "1000", CultureInfo.InvariantCulture);
        var payload = new byte[int.Parse(query?["size"].ToString() ?? "32", CultureInfo.InvariantCulture)];
        for (var i = 0; i < n; i++)
        {
            await session.SendAsync(payload, WebSocketMessageType.Binary, ct);
        }

        // Stay open until the client leaves, so the last messages are acknowledged rather than cut off by a close.
        await foreach (var _ in session.Messages.ReadAllAsync(ct))
        {
        }
    }

    private static async Task SinkAsync(LifelineSession session, CancellationToken ct)
    {
        await foreach (var _ in session.Messages.ReadAllAsync(ct))
        {
        }
    }
}
