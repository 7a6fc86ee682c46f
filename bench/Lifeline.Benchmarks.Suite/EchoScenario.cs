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
/// mostly on how many workers happened to be awake, which a client with an extra hop per message (the Websocket.Client row, as this harness drove it then)
/// kept higher for the server's work as well as its own.
/// Each message's latency is taken with <see cref="Stopwatch.GetTimestamp"/> from before the send to the echo handed
/// to the application; p50 and p99 over the measured messages after a warm-up, the clients taking turns round trip by round trip.
/// </summary>
internal static class EchoScenario
{
    /// <summary>Round trips per client whose allocations and work items are counted, in a pass of their own after the timed ones.</summary>
    private const int CostRoundTrips = 10_000;

    /// <summary>A fixed seed: every run takes the same orders of turns.</summary>
    private const int EchoOrderSeed = 6455;

    public static async Task RunAsync(SuiteSettings settings, TextWriter output)
    {
        await using var host = await HostProcess.StartAsync(settings.Host);
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

            // The clients take turns round trip by round trip, so a slow spell of the machine (a noisy neighbour, a
            // GC, a late worker) falls on all of them alike. In rounds of 2,000 round trips (until cff1b10) one
            // round lasted about as long as such a spell, which then fell on one client alone: the p99 of the raw socket
            // and of its own twin moved 0.70x-1.19x apart. The order of the turns is shuffled anew for every round trip:
            // in a fixed rotation each client always followed the same one, and the raw socket, always right after
            // Websocket.Client (whose receive loop still runs after its echo is handed over), read 5-8% slower at p50
            // than its own twin.
            var count = settings.EchoMessages;
            var samples = Enumerable.Range(0, kinds).Select(_ => new double[count]).ToArray();
            var order = Enumerable.Range(0, kinds).ToArray();
            var random = new Random(EchoOrderSeed);
            for (var i = 0; i < count; i++)
            {
                random.Shuffle(order);
                foreach (var kind in order)
                {
                    var start = Stopwatch.GetTimestamp();
                    await clients[kind].RoundTrip();
                    samples[kind][i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                }
            }

            // Allocations and thread-pool work items in a pass of their own, one client after the other: reading them around
            // every round trip would put work of its own between the timed ones. A row with an extra hop per round trip,
            // in the client or in the server, reads one more work item there. (CPU time is not shown: the thread pool's
            // spinning while it waits for the next item makes it follow the wall clock.)
            var costRoundTrips = Math.Min(count, CostRoundTrips);
            var clientCost = new ProcessCost[kinds]; // this process: the client alone, the server is a child process
            var serverCost = new ProcessCost[kinds];
            for (var kind = 0; kind < kinds; kind++)
            {
                var serverBefore = await host.CostAsync();
                var before = ProcessCost.Now();
                for (var i = 0; i < costRoundTrips; i++)
                {
                    await clients[kind].RoundTrip();
                }

                clientCost[kind] = ProcessCost.Now() - before;
                serverCost[kind] = await host.CostAsync() - serverBefore;
            }

            var table = new Table("client", "p50 µs", "p50 ratio", "p99 µs", "p99 ratio", "mean µs", "B/round trip (client)", "B/round trip (server)",
                "work items/round trip (client)", "work items/round trip (server)");
            var results = samples.Select(list =>
            {
                var sorted = (double[])list.Clone();
                Array.Sort(sorted);
                return (P50: Percentile(sorted, 0.50), P99: Percentile(sorted, 0.99), Mean: sorted.Average());
            }).ToArray();
            for (var kind = 0; kind < kinds; kind++)
            {
                var r = results[kind];
                double PerRoundTrip(double total) => total / costRoundTrips;
                table.Add(ThroughputScenario.Kinds[kind], r.P50, Table.Ratio(r.P50, results[0].P50), r.P99, Table.Ratio(r.P99, results[0].P99), r.Mean,
                    PerRoundTrip(clientCost[kind].Allocated), PerRoundTrip(serverCost[kind].Allocated),
                    PerRoundTrip(clientCost[kind].WorkItems), PerRoundTrip(serverCost[kind].WorkItems));
            }

            await output.WriteLineAsync($"### 3. Echo round trip, 32 B, {count} round trips per client, the clients taking turns (ratio: lower is better)\n\n{table}");
        }
        finally
        {
            // The last round trip may have gone on inline on Websocket.Client's receive loop (see SetupAsync): leave it
            // before closing that client, which would otherwise wait on the loop it runs on.
            await Task.Yield();
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
                        ThroughputScenario.ExpectMessage(await client.ReceiveAsync(buffer));
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
                    var bound = ct.Register(() => Volatile.Read(ref pending)?.TrySetCanceled()); // no token per call, like the other rows
                    roundTrip = async () =>
                    {
                        // Its fastest use, as for the other rows: Websocket.Client raises MessageReceived on its receive
                        // loop, and with synchronous continuations the round trip goes on right there, as a Lifeline row's
                        // goes on where the socket completed its read. (Until 2026-11-28 this source ran its continuations
                        // asynchronously and waited with a token: a thread-pool hop and a registration per round trip that
                        // were the harness's, not the library's.)
                        var echo = new TaskCompletionSource();
                        Volatile.Write(ref pending, echo);
                        await client.SendInstant(payload);
                        await echo.Task;
                    };
                    cleanup = async () =>
                    {
                        await bound.DisposeAsync();
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
