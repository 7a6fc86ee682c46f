using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.FaultProxy;
using Websocket.Client;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// Scenario 4: N clients of one kind connected to a Kestrel host in a process of its own (<see cref="HostProcess"/>) with
/// Lifeline's default server options (1012 hints spread over 1-5 s, drain timeout 20 s; no connection cap, a 30 s host
/// shutdown timeout). The host is stopped gracefully and a new process started on the same port as soon as the old one
/// is down, as a deploy does. (With the host in the clients' process, the collections of one shared heap of 10,000
/// sockets paused the server's accepts for 100-200 ms at a time and bunched the upgrades behind each pause.)
/// Measured from the start of the stop: the time until every client is connected
/// again, the longest any one client was away (from the moment it first saw its connection end to the last moment it was
/// connected again, so an upgrade turned away by the draining host does not count as back: the figure to hold against the
/// server's hint window), the peak of upgrade requests per 100 ms (both processes' counts added), failed
/// connect attempts, the bytes the clients' process allocated per client from the stop until all were back (what
/// drives its collections, whose pauses hold timers back and bunch reconnects; since 2026-11-28 evening the process does
/// not collect from the stop until all are back, <see cref="NoCollectionWindow"/>, and the collections it made anyway are
/// shown), and for session clients the messages
/// lost and duplicated
/// (each sends number 1 before the restart and number 2 as the stop begins; each process records what it received,
/// and the session store carries sessions over through the drain file). One kind at a time, each on its own port.
/// </summary>
internal static class RestartStormScenario
{
    /// <summary>Bytes the clients' process may allocate per client during a restart without collecting: Websocket.Client took 61 KB, the most.</summary>
    private const long NoCollectionBudgetPerClient = 200 * 1024;

    private static readonly TimeSpan[] SignalRDelays = [TimeSpan.Zero, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30)];

    public static async Task RunAsync(SuiteSettings settings, TextWriter output)
    {
        var table = new Table("client", "clients", "stop took", "new process up after", "all back after", "longest away", "back", "peak upgrades /100 ms", "peak in the 100 ms from", "peak ratio to SignalR loop", "failed attempts", "clients' B allocated per client", "clients' collections", "messages lost", "messages duplicated", "sessions lost");
        var rows = new List<object?[]>();
        double signalRPeak = double.NaN;
        Exception? failure = null;
        foreach (var kind in new[] { "SignalR-default loop (0, 2, 10, 30 s)", "Lifeline session", "Lifeline plain", "Websocket.Client 5.5.1 defaults" })
        {
            Result r;
            try
            {
                r = await RunKindAsync(kind, settings);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException or InvalidOperationException or WebSocketException or IOException or System.Net.Sockets.SocketException)
            {
                // One kind failing must not throw away the rows of the kinds that ran (minutes of results); the suite
                // still reports the scenario as failed.
                rows.Add([kind, settings.StormClients, $"FAILED: {e.GetType().Name}: {e.Message}", null, null, null, null, null, null, null, null, null, null, null, null, null]);
                failure ??= e;
                continue;
            }

            if (kind.StartsWith("SignalR", StringComparison.Ordinal))
            {
                signalRPeak = r.Peak;
            }

            rows.Add([kind, settings.StormClients, r.StopTook, r.UpAfter, r.Back == settings.StormClients ? r.AllBack : $"not within {Table.Format(settings.StormBound)}",
                r.Back == settings.StormClients ? r.LongestAway : $"{Table.Format(r.LongestAway)} of those back; {settings.StormClients - r.Back} not back", r.Back, r.Peak, r.PeakAt, Table.Ratio(r.Peak, signalRPeak), r.Failed, r.Allocated, r.Collections, r.Lost, r.Duplicated, r.SessionsLost]);
        }

        foreach (var row in rows)
        {
            table.Add(row);
        }

        await output.WriteLineAsync($"### 4. Restart storm, {settings.StormClients} clients per kind (ulimit -n soft {FileLimit()})\n\n{table}");
        if (failure is not null)
        {
            throw new InvalidOperationException("the restart storm failed for at least one kind (its row says how)", failure);
        }
    }

    private static string FileLimit()
    {
        try
        {
            var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
            return line is null ? "?" : string.Join('/', line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3..5]);
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private sealed record Result(TimeSpan StopTook, TimeSpan UpAfter, TimeSpan AllBack, TimeSpan LongestAway, int Back, double Peak, TimeSpan PeakAt, long Failed, long Allocated, object Collections, object? Lost, object? Duplicated, object? SessionsLost);

    private static async Task<Result> RunKindAsync(string kind, SuiteSettings settings)
    {
        var drainFile = Path.Combine(Path.GetTempPath(), $"lifeline-storm-{Guid.NewGuid():N}.bin");
        var port = LoopbackPorts.ForRestartableServer(); // restarted on this port: not one from the range for outgoing connections
        var hosts = new List<HostProcess>(2); // the old process stays (stopped) until the end: its counters are read last
        var session = kind == "Lifeline session";
        var clients = new List<IStormClient>(settings.StormClients);
        NoCollectionWindow? window = null;
        try
        {
            hosts.Add(await HostProcess.StartAsync(settings.Host, new StormHost(port, drainFile)));
            var uri = hosts[0].Uri(session ? "/session" : "/plain");
            using var connectDeadline = new CancellationTokenSource(TimeSpan.FromMinutes(3)); // a client that never connects fails the run
            using (var gate = new SemaphoreSlim(64))
            {
                var connects = new List<Task>();
                for (var i = 0; i < settings.StormClients; i++)
                {
                    IStormClient client = kind switch
                    {
                        "Lifeline session" or "Lifeline plain" => new LifelineStormClient(uri, session),
                        "Websocket.Client 5.5.1 defaults" => new WebsocketClientStormClient(uri),
                        _ => new SignalRLoopClient(uri),
                    };
                    clients.Add(client);
                    await gate.WaitAsync(connectDeadline.Token);
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

                await Task.WhenAll(connects).WaitAsync(connectDeadline.Token);
                connectDeadline.CancelAfter(Timeout.Infinite);
            }

            await WaitAsync(() => clients.All(c => c.IsConnected), TimeSpan.FromSeconds(60));
            if (session)
            {
                foreach (var client in clients)
                {
                    await client.SendAsync(1);
                }

                await WaitAsync(async () => await hosts[0].ReceivedCountAsync() >= clients.Count, TimeSpan.FromSeconds(30));
            }

            var generations = clients.Select(c => c.Connects).ToArray();
            var failedBefore = clients.Sum(c => c.Failures);
            foreach (var client in clients)
            {
                client.ResetAway();
            }

            // From here until all are back, no collection of this process holds every client's timers back at once
            // (see NoCollectionWindow). The budget is about three times what the most allocating kind took per client.
            window = NoCollectionWindow.Open(Math.Clamp(clients.Count * NoCollectionBudgetPerClient, 64L << 20, 2L << 30));
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var start = Stopwatch.GetTimestamp();
            await hosts[0].SetBucketOriginAsync(start);
            var sends = session ? Task.WhenAll(clients.Select(c => c.SendAsync(2))) : Task.CompletedTask;
            _ = await hosts[0].StopAsync();
            var stopTook = Stopwatch.GetElapsedTime(start);

            // A new process, as a deploy starts one: its runtime and Kestrel start from nothing, and the sessions come
            // from the drain file the old one wrote.
            hosts.Add(await HostProcess.StartAsync(settings.Host, new StormHost(port, drainFile, BucketOrigin: start)));
            var upAfter = Stopwatch.GetElapsedTime(start);
            bool AllBack() => clients.Select((c, i) => c.IsConnected && c.Connects > generations[i]).All(b => b);
            var bound = settings.StormBound - Stopwatch.GetElapsedTime(start);
            await WaitAsync(AllBack, bound > TimeSpan.Zero ? bound : TimeSpan.Zero);
            var allBack = Stopwatch.GetElapsedTime(start);
            var allocated = (GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / clients.Count;
            var collections = window.Opened ? (object)window.Close() : "no region (refused)";
            window = null;
            var back = clients.Where((c, i) => c.IsConnected && c.Connects > generations[i]).Count();
            object? lost = null;
            object? duplicated = null;
            object? sessionsLost = null;
            if (session)
            {
                await sends.WaitAsync(TimeSpan.FromSeconds(10));

                // Distinct pairs across both processes: a count of records would let a repeat stand in for a message
                // still on its way, which would then read as lost. The old process is stopped: its pairs are final.
                var beforeRestart = (await hosts[0].ReceivedAsync()).ToHashSet();
                var received = beforeRestart;
                await WaitAsync(async () =>
                {
                    received = [.. beforeRestart, .. await hosts[1].ReceivedAsync()];
                    return received.Count >= 2 * clients.Count;
                }, TimeSpan.FromSeconds(10));
                long records = 0;
                foreach (var host in hosts)
                {
                    records += await host.ReceivedCountAsync();
                }

                lost = (long)(2 * clients.Count) - received.Count;
                duplicated = records - received.Count;
                sessionsLost = clients.OfType<LifelineStormClient>().Sum(c => c.SessionsLost);
            }

            var upgrades = new Dictionary<long, int>();
            foreach (var host in hosts)
            {
                foreach (var (bucket, count) in await host.UpgradesAsync())
                {
                    upgrades[bucket] = upgrades.GetValueOrDefault(bucket) + count;
                }
            }

            var peak = upgrades.Count == 0 ? default : upgrades.MaxBy(p => p.Value); // bucket, upgrades in it
            var longestAway = clients.Where((c, i) => c.Connects > generations[i]).Select(c => c.LastAway).DefaultIfEmpty().Max();
            return new Result(stopTook, upAfter, allBack, longestAway, back, peak.Value, TimeSpan.FromMilliseconds(peak.Key * 100), clients.Sum(c => c.Failures) - failedBefore, allocated, collections, lost, duplicated, sessionsLost);
        }
        finally
        {
            window?.Close(); // the run failed inside the window: the process collects as usual again
            try
            {
                await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask())).WaitAsync(TimeSpan.FromSeconds(60));
            }
            finally
            {
                // Even when a client's dispose failed or hung: no host process with thousands of connections is left behind.
                foreach (var host in hosts)
                {
                    await host.DisposeAsync();
                }

                File.Delete(drainFile);
            }
        }
    }

    private static Task WaitAsync(Func<bool> condition, TimeSpan bound) => WaitAsync(() => Task.FromResult(condition()), bound);

    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan bound)
    {
        var start = Stopwatch.GetTimestamp();
        while (!await condition() && Stopwatch.GetElapsedTime(start) < bound)
        {
            await Task.Delay(20);
        }
    }

    private interface IStormClient : IAsyncDisposable
    {
        bool IsConnected { get; }

        long Connects { get; }

        long Failures { get; }

        /// <summary>From the moment the client first saw its connection end until it was last connected again.</summary>
        TimeSpan LastAway { get; }

        /// <summary>Forgets what came before the restart (the first connect, too, reads as a "down" then an "up").</summary>
        void ResetAway();

        /// <summary>Completes on the first connect; fails when <paramref name="cancellationToken"/> ends first.</summary>
        Task StartAsync(CancellationToken cancellationToken);

        Task SendAsync(int number);
    }

    /// <summary>Lifeline with its default options (reconnect policy, keep-alive); only the address and the mode set.</summary>
    private sealed class LifelineStormClient : IStormClient
    {
        private readonly LifelineClient _client;
        private readonly AwayClock _away = new();
        private long _attempts;

        public LifelineStormClient(Uri uri, bool session)
        {
            var options = new LifelineClientOptions
            {
                Uri = uri,
                BeforeConnect = (_, _) =>
                {
                    Interlocked.Increment(ref _attempts);
                    return ValueTask.CompletedTask;
                },
            };
            if (session)
            {
                options.Session = new SessionOptions();
            }

            _client = new LifelineClient(options);
            _client.StateChanged += (_, e) => _away.Observe(e.Current == LifelineClientState.Connected);
        }

        public TimeSpan LastAway => _away.LastAway;

        public void ResetAway() => _away.Reset();

        public bool IsConnected => _client.State == LifelineClientState.Connected;

        public long Connects => _client.Statistics.Connects;

        public long Failures => Interlocked.Read(ref _attempts) - Connects;

        public long SessionsLost => _client.SessionCounts.Lost;

        public Task StartAsync(CancellationToken cancellationToken) => _client.StartAsync(cancellationToken);

        public Task SendAsync(int number)
        {
            var data = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(data, number);
            return _client.SendAsync(data).AsTask();
        }

        public ValueTask DisposeAsync() => _client.DisposeAsync();
    }

    /// <summary>A bare ClientWebSocket that reconnects the way SignalR's default retry policy does: 0, 2, 10, 30 s after a loss, then gives up.</summary>
    private sealed class SignalRLoopClient(Uri uri) : IStormClient
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _connected;
        private readonly AwayClock _away = new();
        private long _connects;
        private long _failures;
        private Task _loop = Task.CompletedTask;

        public TimeSpan LastAway => _away.LastAway;

        public void ResetAway() => _away.Reset();

        public bool IsConnected => _connected;

        public long Connects => Interlocked.Read(ref _connects);

        public long Failures => Interlocked.Read(ref _failures);

        public Task StartAsync(CancellationToken cancellationToken)
        {
            _loop = Task.Run(LoopAsync);
            return _first.Task.WaitAsync(cancellationToken);
        }

        public Task SendAsync(int number) => Task.CompletedTask;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _stop.Dispose();
        }

        private async Task LoopAsync()
        {
            var retry = -1;
            var buffer = new byte[1024];
            while (!_stop.IsCancellationRequested)
            {
                if (retry >= 0)
                {
                    if (retry >= SignalRDelays.Length)
                    {
                        _first.TrySetException(new InvalidOperationException("the SignalR-default loop gave up before its first connect"));
                        return;
                    }

                    try
                    {
                        await Task.Delay(SignalRDelays[retry], _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }

                using var socket = new ClientWebSocket();
                try
                {
                    await socket.ConnectAsync(uri, _stop.Token);
                }
                catch (Exception) when (!_stop.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _failures);
                    retry++;
                    continue;
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Interlocked.Increment(ref _connects);
                _away.Observe(connected: true);
                _connected = true;
                _first.TrySetResult();
                retry = 0;
                try
                {
                    while (true)
                    {
                        var result = await socket.ReceiveAsync(buffer.AsMemory(), _stop.Token);
                        if (result.MessageType == WebSocketMessageType.Close)
                        {
                            break;
                        }
                    }
                }
                catch (Exception) when (!_stop.IsCancellationRequested)
                {
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                finally
                {
                    _connected = false;
                    _away.Observe(connected: false);
                }
            }
        }
    }

    /// <summary>Websocket.Client 5.5.1 with its defaults (reconnect on, 1 min reconnect and error-reconnect timeouts).</summary>
    private sealed class WebsocketClientStormClient : IStormClient
    {
        private readonly WebsocketClient _client;
        private readonly AwayClock _away = new();
        private long _connects;
        private long _failures;

        public WebsocketClientStormClient(Uri uri)
        {
            _client = new WebsocketClient(uri);
            _client.ReconnectionHappened.Subscribe(_ =>
            {
                Interlocked.Increment(ref _connects);
                _away.Observe(connected: true);
            });
            _client.DisconnectionHappened.Subscribe(info =>
            {
                _away.Observe(connected: false);
                if (info.Type == DisconnectionType.Error)
                {
                    Interlocked.Increment(ref _failures);
                }
            });
        }

        public bool IsConnected => _client.IsRunning;

        public TimeSpan LastAway => _away.LastAway;

        public void ResetAway() => _away.Reset();

        public long Connects => Interlocked.Read(ref _connects);

        public long Failures => Interlocked.Read(ref _failures);

        public Task StartAsync(CancellationToken cancellationToken) => _client.Start().WaitAsync(cancellationToken);

        public Task SendAsync(int number) => Task.CompletedTask;

        public ValueTask DisposeAsync()
        {
            _client.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// Times one client's absence around the restart: from the first "down" to the last "up" after it, so a connection
    /// that was accepted and at once turned away (an upgrade that reached the old host while it drained) does not end it.
    /// </summary>
    private sealed class AwayClock
    {
        private readonly Lock _lock = new();
        private long _downAt;
        private TimeSpan _lastAway;

        public TimeSpan LastAway
        {
            get
            {
                lock (_lock)
                {
                    return _lastAway;
                }
            }
        }

        public void Reset()
        {
            lock (_lock)
            {
                _downAt = 0;
                _lastAway = TimeSpan.Zero;
            }
        }

        public void Observe(bool connected)
        {
            lock (_lock)
            {
                if (!connected && _downAt == 0)
                {
                    _downAt = Stopwatch.GetTimestamp();
                }
                else if (connected && _downAt != 0)
                {
                    _lastAway = Stopwatch.GetElapsedTime(_downAt);
                }
            }
        }
    }
}
