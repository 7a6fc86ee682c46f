using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using Lifeline.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// What one host saw of the restart storm: upgrade requests per 100 ms and the numbered messages received. The storm's
/// hosts run in processes of their own (<see cref="HostProcess"/>), so each process keeps its own counters and the
/// scenario adds them up; the buckets count from an origin the scenario gives as a <see cref="System.Diagnostics.Stopwatch"/>
/// timestamp, which on Linux (CLOCK_MONOTONIC) and Windows (QueryPerformanceCounter) reads the same in every process.
/// </summary>
internal sealed class HostCounters
{
    private long _bucketOrigin = System.Diagnostics.Stopwatch.GetTimestamp();
    private long _records;

    /// <summary>WebSocket upgrade requests that reached the application, per 100 ms since the origin.</summary>
    public ConcurrentDictionary<long, int> UpgradesPer100Ms { get; } = new();

    /// <summary>(session id or connection, message number) pairs the server received.</summary>
    public ConcurrentDictionary<(string Session, int Number), byte> Received { get; } = new();

    /// <summary>Every numbered message received, a repeat too: more than <see cref="Received"/> holds means duplicates.</summary>
    public long Records => Interlocked.Read(ref _records);

    /// <summary>Forgets the upgrades counted so far and counts the next ones from <paramref name="origin"/>.</summary>
    public void ResetBuckets(long origin)
    {
        UpgradesPer100Ms.Clear();
        Volatile.Write(ref _bucketOrigin, origin);
    }

    public void CountUpgrade()
    {
        var bucket = (long)Math.Floor(System.Diagnostics.Stopwatch.GetElapsedTime(Volatile.Read(ref _bucketOrigin)).TotalMilliseconds / 100);
        UpgradesPer100Ms.AddOrUpdate(bucket, 1, (_, n) => n + 1);
    }

    public void Record(string id, int number)
    {
        Interlocked.Increment(ref _records);
        Received.TryAdd((id, number), 0);
    }
}

/// <summary>
/// A real Kestrel server on 127.0.0.1 for the suite: <c>/raw</c> (bare ASP.NET Core WebSockets: echo, zero-byte reads
/// while idle), <c>/plain</c> (<c>MapLifeline</c>) and <c>/session</c> (<c>MapLifelineSession</c>, plain mode for clients
/// that do not offer lifeline.v1). Every endpoint echoes; <c>/plain</c> and <c>/session</c> record 4-byte numbered messages
/// in <see cref="HostCounters.Received"/>. Stopping it is the graceful path: Lifeline's drain sends 1012 with spread hints.
/// </summary>
internal sealed class LifelineHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LifelineHost(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public IServiceProvider Services => _app.Services;

    public Uri Uri(string path) => new($"ws://127.0.0.1:{Port}{path}");

    public static async Task<LifelineHost> StartAsync(int port = 0, HostCounters? counters = null, string? drainFile = null, Action<LifelineServerOptions>? configure = null)
    {
        // Nothing from the current directory or the environment: the installed tool may run inside a user's project,
        // whose appsettings.json (Kestrel endpoints, logging) must not change what is measured.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, port);
            o.Limits.MaxConcurrentConnections = null;
            o.Limits.MaxConcurrentUpgradedConnections = null;
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.Services.AddLifeline(o =>
        {
            o.MaxConnections = null;
            configure?.Invoke(o);
        });
        builder.Services.AddLifelineSessions(o =>
        {
            if (drainFile is not null)
            {
                o.DrainFilePath = drainFile;
            }
        });
        var app = builder.Build();
        app.UseWebSockets();
        if (counters is not null)
        {
            app.Use((context, next) =>
            {
                if (context.WebSockets.IsWebSocketRequest)
                {
                    counters.CountUpgrade();
                }

                return next(context);
            });
        }

        app.Map("/raw", RawAsync);
        app.MapLifeline("/plain", async (connection, ct) =>
        {
            var id = Guid.NewGuid().ToString("N");
            await foreach (var message in connection.Messages.ReadAllAsync(ct))
            {
                Record(counters, id, message.Data);
                await connection.SendAsync(message.Data, message.Type, ct);
            }
        });
        app.MapLifelineSession("/session", async (session, ct) =>
        {
            var id = session.Id.ToString();
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                Record(counters, id, message.Data);
                await session.SendAsync(message.Data, message.Type, ct);
            }
        });
        await app.StartAsync();
        return new LifelineHost(app, new Uri(app.Urls.First()).Port);
    }

    public async Task StopAsync()
    {
        await _app.StopAsync(CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }

    private static void Record(HostCounters? counters, string id, ReadOnlyMemory<byte> data)
    {
        if (counters is not null && data.Length == 4)
        {
            counters.Record(id, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data.Span));
        }
    }

    private static async Task RawAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = 400;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        try
        {
            while (true)
            {
                // Wait with a zero-byte read so an idle connection holds no buffer; rent one only when data is there.
                _ = await socket.ReceiveAsync(Memory<byte>.Empty, context.RequestAborted);
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(4096);
                try
                {
                    var result = await socket.ReceiveAsync(buffer.AsMemory(), context.RequestAborted);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                        return;
                    }

                    await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, context.RequestAborted);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
        }
    }
}
