using System.Diagnostics;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.Reconnect;
using Websocket.Client;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// Scenario 3: echo round trip, one 32-byte message in flight at a time, against one Kestrel server whose
/// <c>/session</c> endpoint (<c>MapLifelineSession</c>) echoes in both modes, so all the clients meet the same server.
/// The server runs in a process of its own (<see cref="HostProcess"/>), as it does in production. In this process its
/// work items shared the clients' thread pool, and a round trip took about seven of them: the latency then depended
/// mostly on how many workers happened to be awake, which a client with an extra hop per message (Websocket.Client)
/// kept higher for the server's work as well as its own.
/// Each message's latency is taken with <see cref="Stopwatch.GetTimestamp"/> from before the send to the echo handed
/// to the application; p50 and p99 over the measured messages after a warm-up, taken in interleaved rounds.
/// </summary>
internal static class EchoScenario
{
    /// <summary>The measured round trips are taken in this many interleaved rounds, each starting with the next client,
    /// so no client has the server (or the machine) to itself at a better or worse moment than the others.</summary>
    private const int Rounds = 50;

    public static async Task RunAsync(SuiteSettings settings, TextWriter output)
    {
        await using var host = await HostProcess.StartAsync();
        var uri = host.Uri("/session");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(300));
        var kinds = ThroughputScenario.Kinds.Length;
        var clients = new List<(Func<Task> RoundTrip, Func<Task> Cleanup)>(kinds);
        try
        {
            for (var kind = 0; kind < kinds; kind++)
            {
                clients.Add(await SetupAsync(kind, uri, timeout.Token));
            }

            foreach (var client in clients)
            {
                for (var i = 0; i < settings.EchoWarmup; i++)
                {
                    await client.RoundTrip();
                }
            }

            var perRound = Math.Max(1, settings.EchoMessages / Rounds);
            var samples = Enumerable.Range(0, kinds).Select(_ => new List<double>(perRound * Rounds)).ToArray();
            var allocated = new long[kinds]; // this process: the client alone, the server is a child process
            for (var round = 0; round < Rounds; round++)
            {
                for (var turn = 0; turn < kinds; turn++)
                {
                    var kind = (round + turn) % kinds;
                    var before = GC.GetTotalAllocatedBytes(precise: true);
                    for (var i = 0; i < perRound; i++)
                    {
                        var start = Stopwatch.GetTimestamp();
                        await clients[kind].RoundTrip();
                        samples[kind].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                    }

                    allocated[kind] += GC.GetTotalAllocatedBytes(precise: true) - before;
                }
            }

            var table = new Table("client", "p50 µs", "p50 ratio", "p99 µs", "p99 ratio", "mean µs", "B/round trip (client)");
            var results = samples.Select(list =>
            {
                var sorted = list.ToArray();
                Array.Sort(sorted);
                return (P50: Percentile(sorted, 0.50), P99: Percentile(sorted, 0.99), Mean: sorted.Average());
            }).ToArray();
            for (var kind = 0; kind < kinds; kind++)
            {
                var r = results[kind];
                table.Add(ThroughputScenario.Kinds[kind], r.P50, Table.Ratio(r.P50, results[0].P50), r.P99, Table.Ratio(r.P99, results[0].P99), r.Mean,
                    (double)allocated[kind] / samples[kind].Count);
            }

            await output.WriteLineAsync($"### 3. Echo round trip, 32 B, {perRound * Rounds} messages per client in {Rounds} interleaved rounds (ratio: lower is better)\n\n{table}");
        }
        finally
        {
            foreach (var client in clients)
            {
                try
                {
                    await client.Cleanup();
                }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
                {
                    // One client's failed close must not leave the others open; the host process ends them all anyway.
                }
            }
        }
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    /// <summary>Connects one client of a kind; returns one round trip (send 32 bytes, wait for the echo) and its cleanup.</summary>
    private static async Task<(Func<Task> RoundTrip, Func<Task> Cleanup)> SetupAsync(int kind, Uri uri, CancellationToken ct)
    {
        var payload = new byte[32];
        Func<Task> roundTrip;
        Func<Task> cleanup;
        switch (kind)
        {
            case ThroughputScenario.Raw or ThroughputScenario.RawWithPongChecks:
                {
                    var socket = ThroughputScenario.RawSocket(kind);
                    await socket.ConnectAsync(uri, ct);
                    var buffer = new byte[4096];
                    var bound = ct.Register(socket.Abort); // no token per call, like the Lifeline rows
                    roundTrip = async () =>
                    {
                        await socket.SendAsync(payload, WebSocketMessageType.Binary, true, CancellationToken.None);
                        ValueWebSocketReceiveResult result;
                        do
                        {
                            result = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                        }
                        while (!result.EndOfMessage);
                    };
                    cleanup = async () =>
                    {
                        await bound.DisposeAsync();
                        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, ct);
                        socket.Dispose();
                    };
                    break;
                }

            case ThroughputScenario.Plain or ThroughputScenario.Session:
                {
                    var options = new LifelineClientOptions { Uri = uri, ReconnectPolicy = NeverReconnectPolicy.Instance };
                    if (kind == ThroughputScenario.Session)
                    {
                        options.Session = new SessionOptions();
                    }

                    var client = new LifelineClient(options);
                    await client.StartAsync(ct);
                    var buffer = new byte[64 * 1024];
                    // Both Lifeline rows use the fastest documented APIs: a send without a token (written straight to the
                    // socket when nothing is queued) and ReceiveAsync into the caller's memory without a token (a
                    // cancellable read first waits for data with a zero-byte read); the run's bound disposes the client.
                    var bound = ct.Register(() => _ = client.DisposeAsync().AsTask());
                    roundTrip = async () =>
                    {
                        await client.SendAsync(payload, WebSocketMessageType.Binary);
                        _ = await client.ReceiveAsync(buffer);
                    };
                    cleanup = async () =>
                    {
                        await bound.DisposeAsync();
                        await client.DisposeAsync();
                    };
                    break;
                }

            default:
                {
                    var client = new WebsocketClient(uri) { IsReconnectionEnabled = false };
                    TaskCompletionSource? pending = null;
                    var subscription = client.MessageReceived.Subscribe(_ => Volatile.Read(ref pending)?.TrySetResult());
                    await client.Start();
                    roundTrip = async () =>
                    {
                        var echo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        Volatile.Write(ref pending, echo);
                        await client.SendInstant(payload);
                        await echo.Task.WaitAsync(ct);
                    };
                    cleanup = async () =>
                    {
                        subscription.Dispose();
                        await client.Stop(WebSocketCloseStatus.NormalClosure, "");
                        client.Dispose();
                    };
                    break;
                }
        }

        return (roundTrip, cleanup);
    }
}
