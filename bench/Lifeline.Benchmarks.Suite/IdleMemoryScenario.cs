using System.Diagnostics;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.Reconnect;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// Scenario 6. Memory per idle connection: the server runs in its own process (<see cref="HostProcess"/>,
/// one process per kind) and reports <see cref="GC.GetTotalMemory(bool)"/> after a full collection before and after the
/// clients connect; the clients live in this process and are measured the same way. Both figures are the difference
/// divided by N: managed heap only (native socket buffers and the kernel are not in it). Then the drain: N connections
/// held, the server host stopped gracefully, and the time until every client has its 1012.
/// </summary>
internal static class IdleMemoryScenario
{
    /// <param name="hold">Whether to run the long hold and drain (6b) after the per-connection figures (6a).</param>
    public static async Task RunAsync(SuiteSettings settings, TextWriter output, bool hold)
    {
        var table = new Table("stack", "connections", "server B/conn", "server beyond raw", "client B/conn", "client beyond raw");
        (double Server, double Client) raw = default;
        foreach (var kind in new[] { "raw", "plain", "session" })
        {
            await using var server = await HostProcess.StartAsync(settings.Host);
            var (s, c, _) = await HoldAsync(server, kind, settings.IdleConnections, TimeSpan.FromSeconds(settings.IsSmoke ? 0.2 : 2), stop: false);
            if (kind == "raw")
            {
                raw = (s, c);
            }

            table.Add(kind == "raw" ? "raw Kestrel / ClientWebSocket" : $"Lifeline {kind}", settings.IdleConnections, s, kind == "raw" ? "-" : Table.Format(s - raw.Server), c, kind == "raw" ? "-" : Table.Format(c - raw.Client));
        }

        await output.WriteLineAsync($"### 6a. Memory per idle connection (managed heap after a full GC)\n\n{table}");
        if (!hold)
        {
            return;
        }

        await using (var server = await HostProcess.StartAsync(settings.Host))
        {
            var (s, c, drain) = await HoldAsync(server, "plain", settings.HeldConnections, settings.HoldFor, stop: true);
            var held = new Table("connections", "held for", "server B/conn", "client B/conn", "server stop took", "all clients closed after", "closed with 1012", "other closes");
            held.Add(settings.HeldConnections, settings.HoldFor, s, c, drain!.StopTook, drain.AllClosed, drain.With1012, drain.Other);
            await output.WriteLineAsync($"### 6b. {settings.HeldConnections} Lifeline plain connections held, then drained with 1012\n\n{held}");
        }
    }

    private sealed record Drain(TimeSpan StopTook, object AllClosed, int With1012, int Other);

    private static async Task<(double Server, double Client, Drain? Drain)> HoldAsync(HostProcess server, string kind, int n, TimeSpan hold, bool stop)
    {
        var serverBefore = await server.MeasureAsync();
        var clientBefore = await SettledHeapAsync();
        var raws = new List<ClientWebSocket>();
        var pending = new List<Task>();
        var lifelines = new List<LifelineClient>();
        var uri = new Uri($"ws://127.0.0.1:{server.Port}/{kind}");
        using var gate = new SemaphoreSlim(64);
        using var connectDeadline = new CancellationTokenSource(TimeSpan.FromMinutes(3)); // every connect, the default policy retrying included
        try
        {
            var connects = new List<Task>();
            for (var i = 0; i < n; i++)
            {
                await gate.WaitAsync(connectDeadline.Token);
                if (kind == "raw")
                {
                    var socket = new ClientWebSocket();
                    raws.Add(socket);
                    connects.Add(Task.Run(async () =>
                    {
                        try
                        {
                            await socket.ConnectAsync(uri, connectDeadline.Token);
                        }
                        finally
                        {
                            gate.Release();
                        }
                    }));
                }
                else
                {
                    // The per-connection figures are for the options users start with; the drain (6b) must see each
                    // client's 1012 as its last close, so there they do not reconnect.
                    var options = new LifelineClientOptions { Uri = uri };
                    if (stop)
                    {
                        options.ReconnectPolicy = NeverReconnectPolicy.Instance;
                    }

                    if (kind == "session")
                    {
                        options.Session = new SessionOptions();
                    }

                    var client = new LifelineClient(options);
                    lifelines.Add(client);
                    connects.Add(Task.Run(async () =>
                    {
                        try
                        {
                            await client.StartAsync(connectDeadline.Token);
                        }
                        finally
                        {
                            gate.Release();
                        }
                    }));
                }
            }

            await Task.WhenAll(connects).WaitAsync(connectDeadline.Token);
            connects.Clear(); // finished: their tasks are not part of what a connection costs
            connectDeadline.CancelAfter(Timeout.Infinite); // the deadline was for the connects only

            // A raw client waits the way an idle reader does: a zero-byte receive pending.
            pending.AddRange(raws.Select(s => s.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).AsTask()));
            await Task.Delay(hold);
            var serverAfter = await server.MeasureAsync();
            var clientAfter = Measure();
            var serverPer = (double)(serverAfter - serverBefore) / n;
            var clientPer = (double)(clientAfter - clientBefore) / n;
            Drain? drain = null;
            if (stop)
            {
                var stopTook = await server.StopAsync();
                var start = Stopwatch.GetTimestamp();
                while (lifelines.Any(c => c.State != LifelineClientState.Closed) && Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(40))
                {
                    await Task.Delay(50);
                }

                var allClosed = lifelines.All(c => c.State == LifelineClientState.Closed) ? (object)(stopTook + Stopwatch.GetElapsedTime(start)) : "not within 40 s after the stop";
                var with1012 = lifelines.Count(c => c.LastClose?.Code.Value == 1012);
                drain = new Drain(stopTook, allClosed, with1012, lifelines.Count - with1012);
            }

            return (serverPer, clientPer, drain);
        }
        finally
        {
            // Also when a connect or a measurement failed: the clients (whose default policy reconnects for ever) must not
            // go on beside the next scenario.
            foreach (var socket in raws)
            {
                socket.Abort();
                socket.Dispose();
            }

            await Task.WhenAll(pending.Select(p => p.ContinueWith(_ => { }, TaskScheduler.Default)));
            await Task.WhenAll(lifelines.Select(c => c.DisposeAsync().AsTask())).WaitAsync(TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>
    /// This process's heap once it stops shrinking: what earlier scenarios left (sockets closing, timers of clients
    /// disposed) is let go first, not during the next stack's window, where it read as that stack costing less (the raw
    /// client read 200 B lower per connection after the storm and dead-link scenarios).
    /// </summary>
    private static async Task<long> SettledHeapAsync()
    {
        var heap = Measure();
        for (var i = 0; i < 20; i++)
        {
            await Task.Delay(500);
            var again = Measure();
            if (Math.Abs(again - heap) < 16 * 1024)
            {
                return again;
            }

            heap = again;
        }

        return heap;
    }

    /// <summary>This process's managed heap after full, compacting collections.</summary>
    internal static long Measure()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
