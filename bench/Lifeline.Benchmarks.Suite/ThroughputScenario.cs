using System.Diagnostics;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.Reconnect;
using Websocket.Client;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// Scenarios 1 and 2: receive and send throughput with the client as the bottleneck (<see cref="FramedServer"/>:
/// pre-built frames for receiving, a counting sink for sending), the clients interleaved in each repetition (each
/// repetition starting with the next client), the median reported. Receive: a fresh connection per run, and the server writes all its frames as soon as the upgrade
/// is done; the clock starts when the first message is handed to the application and stops at the last, so the rate
/// is that of the messages after the first, all read after the clock started (what connecting costs, a session's
/// handshake included, is not part of it: the restart storm measures that). Send: it stops when the server has counted
/// the last message, the same rule for every client. Bytes per message: <see cref="GC.GetTotalAllocatedBytes(bool)"/>
/// over the same window (the server allocates nothing per message, so this is the client's).
/// </summary>
internal static class ThroughputScenario
{
    // The second row is the raw socket with the runtime's own pong check at Lifeline's default settings (a Ping after
    // 15 s of silence, a 15 s Pong timeout): what dead-link detection costs when the runtime does it, a clock reading per
    // message received. Lifeline detects dead links with its own pings (LinkStream), so its rows do not pay that.
    public static readonly string[] Kinds = ["raw ClientWebSocket", "raw, runtime pong check", "Lifeline plain", "Lifeline session", "Websocket.Client 5.5.1"];

    public const int Raw = 0;
    public const int RawWithPongChecks = 1;
    public const int Plain = 2;
    public const int Session = 3;

    private const int MaxWarmUpRounds = 20;
    private static readonly TimeSpan WarmUpTime = TimeSpan.FromSeconds(1.5);

    public static async Task RunAsync(SuiteSettings settings, TextWriter output)
    {
        foreach (var direction in new[] { "receive", "send" })
        {
            var table = new Table("client", "size", "msg/s", "ratio to raw", "B/msg", "B/msg beyond raw");
            foreach (var size in new[] { 32, 4096 })
            {
                var count = (direction, size) switch
                {
                    ("receive", 32) => settings.SmallMessagesReceived,
                    ("receive", _) => settings.LargeMessagesReceived,
                    (_, 32) => settings.SmallMessagesSent,
                    _ => settings.LargeMessagesSent,
                };
                using var server = new FramedServer();
                if (direction == "receive")
                {
                    server.PrepareBlast(count, size);
                }

                var results = Kinds.Select(_ => new List<(double Rate, double Bytes)>()).ToArray();

                // Unmeasured rounds first, until every client has run for at least WarmUpTime: a run lasts a few tenths
                // of a second, and the JIT takes several of them to move a hot path through its tiers
                // (first code, instrumented, optimised), so without enough warm-up the measured runs of every client
                // are partly warm-up, some more than others.
                if (settings.Repetitions > 1)
                {
                    var warmedFor = new TimeSpan[Kinds.Length];
                    for (var round = 0; round < MaxWarmUpRounds && (round < 2 || warmedFor.Any(t => t < WarmUpTime)); round++)
                    {
                        for (var k = 0; k < Kinds.Length; k++)
                        {
                            var started = Stopwatch.GetTimestamp();
                            _ = direction == "receive" ? await ReceiveAsync(k, server, count) : await SendAsync(k, server, count, size);
                            warmedFor[k] += Stopwatch.GetElapsedTime(started);
                        }
                    }
                }

                // Each repetition starts with the next client, so that with as many repetitions as clients each one
                // runs once in every place of the order: what one run leaves behind (garbage to collect, a warm or cold
                // cache) falls on every client alike rather than always on the one after it.
                for (var rep = 0; rep < settings.Repetitions; rep++)
                {
                    for (var turn = 0; turn < Kinds.Length; turn++)
                    {
                        var k = (rep + turn) % Kinds.Length;
                        results[k].Add(direction == "receive"
                            ? await ReceiveAsync(k, server, count)
                            : await SendAsync(k, server, count, size));
                    }
                }

                var raw = Median(results[0]);
                for (var k = 0; k < Kinds.Length; k++)
                {
                    var m = Median(results[k]);
                    table.Add(Kinds[k], size == 32 ? "32 B" : "4 KiB", m.Rate, Table.Ratio(m.Rate, raw.Rate), m.Bytes, k == 0 ? "-" : Table.Format(m.Bytes - raw.Bytes));
                }
            }

            await output.WriteLineAsync($"### {(direction == "receive" ? "1. Receive" : "2. Send")} throughput (median of {settings.Repetitions})\n\n{table}");
        }
    }

    private static (double Rate, double Bytes) Median(List<(double Rate, double Bytes)> runs)
    {
        var rates = runs.Select(r => r.Rate).Order().ToArray();
        var bytes = runs.Select(r => r.Bytes).Order().ToArray();
        return (rates[rates.Length / 2], bytes[bytes.Length / 2]);
    }

    /// <summary>
    /// A closed client's ReceiveAsync returns Closed at once instead of throwing: without this check a link lost mid-run
    /// (or the run's timeout disposing the client) would race through the rest of the count and print a rate never measured.
    /// </summary>
    internal static void ExpectMessage(LifelineReceiveResult result)
    {
        if (result.Status != LifelineReceiveStatus.Message)
        {
            throw new InvalidOperationException($"the Lifeline client's receive ended with {result.Status} before the run's last message");
        }
    }

    private static LifelineClientOptions Options(Uri uri, bool session, int count, int size)
    {
        var options = new LifelineClientOptions { Uri = uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromMilliseconds(200) };
        options.SendQueue.MaxMessages = Math.Max(count, 1024);
        options.SendQueue.MaxBytes = Math.Max((long)count * (size + 32), 1 << 20);
        if (session)
        {
            options.Session = new SessionOptions();
        }

        return options;
    }

    private static async Task<(double Rate, double Bytes)> ReceiveAsync(int kind, FramedServer server, int count)
    {
        // Timed from the first message to the last: at least two, or there is nothing to time.
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 2);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var ct = timeout.Token;
        switch (kind)
        {
            case Raw or RawWithPongChecks:
                {
                    // Without a token, like the Lifeline rows (a token costs the raw socket a registration per read);
                    // the run's timeout still bounds it, by aborting the socket.
                    var buffer = new byte[64 * 1024];
                    using var socket = RawSocket(kind);
                    await socket.ConnectAsync(server.BlastUri, ct);
                    await using var bound = ct.Register(socket.Abort);
                    (long Start, long Bytes) begun = default;
                    for (var received = 0; received < count;)
                    {
                        var result = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                        if (result.EndOfMessage && ++received == 1)
                        {
                            begun = Begin();
                        }
                    }

                    var measured = End(begun.Start, begun.Bytes, count - 1);
                    socket.Abort();
                    return measured;
                }

            case Plain or Session:
                {
                    // Both Lifeline rows read with ReceiveAsync(Memory<byte>), the documented allocation-free way to read,
                    // and without a token (a cancellable read first waits for data with a zero-byte read); the run's
                    // timeout still bounds it, by disposing the client. The Messages API costs an array per message more.
                    var buffer = new byte[64 * 1024];
                    await using var client = new LifelineClient(Options(server.BlastUri, kind == Session, count, 0));
                    await client.StartAsync(ct);
                    await using var bound = ct.Register(() => _ = client.DisposeAsync().AsTask());
                    ExpectMessage(await client.ReceiveAsync(buffer));
                    var (start, before) = Begin();
                    for (var received = 1; received < count; received++)
                    {
                        ExpectMessage(await client.ReceiveAsync(buffer));
                    }

                    return End(start, before, count - 1);
                }

            default:
                {
                    (long Start, long Bytes) begun = default;
                    var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    var received = 0;
                    using var client = new WebsocketClient(server.BlastUri) { IsReconnectionEnabled = false };
                    using var subscription = client.MessageReceived.Subscribe(_ =>
                    {
                        if (++received == 1)
                        {
                            begun = Begin();
                        }
                        else if (received == count)
                        {
                            done.TrySetResult();
                        }
                    });
                    await client.Start();
                    await done.Task.WaitAsync(ct);
                    return End(begun.Start, begun.Bytes, count - 1);
                }
        }
    }

    private static async Task<(double Rate, double Bytes)> SendAsync(int kind, FramedServer server, int count, int size)
    {
        var payload = new byte[size];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var ct = timeout.Token;
        var target = server.SinkMessages + count;
        switch (kind)
        {
            case Raw or RawWithPongChecks:
                {
                    using var socket = RawSocket(kind);
                    await socket.ConnectAsync(server.SinkUri, ct);
                    await using var bound = ct.Register(socket.Abort);
                    GC.Collect();
                    var (start, before) = Begin();
                    for (var i = 0; i < count; i++)
                    {
                        await socket.SendAsync(payload, WebSocketMessageType.Binary, true, CancellationToken.None);
                    }

                    await WaitForSinkAsync(server, target, ct);
                    var measured = End(start, before, count);
                    socket.Abort();
                    return measured;
                }

            case Plain or Session:
                {
                    await using var client = new LifelineClient(Options(server.SinkUri, kind == Session, count, size));
                    await client.StartAsync(ct);
                    GC.Collect();
                    var (start, before) = Begin();
                    for (var i = 0; i < count; i++)
                    {
                        // Both Lifeline rows send without a token: the documented way to write straight to the socket.
                        await client.SendAsync(payload);
                    }

                    await WaitForSinkAsync(server, target, ct);
                    return End(start, before, count);
                }

            default:
                {
                    using var client = new WebsocketClient(server.SinkUri) { IsReconnectionEnabled = false };
                    await client.Start();
                    GC.Collect();
                    var (start, before) = Begin();
                    for (var i = 0; i < count; i++)
                    {
                        await client.SendInstant(payload);
                    }

                    await WaitForSinkAsync(server, target, ct);
                    return End(start, before, count);
                }
        }
    }

    public static ClientWebSocket RawSocket(int kind)
    {
        var socket = new ClientWebSocket();
        if (kind == RawWithPongChecks)
        {
            var defaults = new LifelineClientOptions();
            socket.Options.KeepAliveInterval = defaults.KeepAliveInterval;
            socket.Options.KeepAliveTimeout = defaults.KeepAliveTimeout;
        }

        return socket;
    }

    private static async Task WaitForSinkAsync(FramedServer server, long target, CancellationToken ct)
    {
        var spin = new SpinWait();
        while (server.SinkMessages < target)
        {
            ct.ThrowIfCancellationRequested();
            if (spin.NextSpinWillYield)
            {
                await Task.Yield();
            }

            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    private static (long Start, long Bytes) Begin() => (Stopwatch.GetTimestamp(), GC.GetTotalAllocatedBytes(precise: true));

    private static (double Rate, double Bytes) End(long start, long before, int count)
    {
        var elapsed = Stopwatch.GetElapsedTime(start);
        var bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
        return (count / elapsed.TotalSeconds, (double)bytes / count);
    }
}
