using System.Globalization;
using Lifeline.FaultProxy;

namespace Lifeline.Cli.Demo;

/// <summary>What <c>lifeline demo</c> was asked for.</summary>
/// <param name="ClientsPerKind">Clients of each of the three kinds.</param>
/// <param name="Incidents">The incidents to play, in the catalogue's order.</param>
/// <param name="Seed">Seed for the jitter, the retry hints and which clients a shed hits.</param>
/// <param name="ConnectBound">How long the clients get to connect before the incidents start; default 30 s.</param>
internal sealed record DemoSettings(int ClientsPerKind, IReadOnlyList<DemoIncident> Incidents, int Seed, TimeSpan? ConnectBound = null);

/// <summary>The demo could not set itself up (its clients did not connect in time): nothing was measured.</summary>
internal sealed class DemoSetupException(string message) : Exception(message);

/// <summary>
/// Plays the demo: starts the server host, the fault proxy in front of it and the clients, plays each incident and
/// waits for the clients to come back, lets the streams settle, and returns the figures. Everything it started is
/// stopped before it returns, also when cancelled (Ctrl-C).
/// </summary>
internal sealed class DemoRunner(DemoSettings settings, TimeProvider time, Action<string> announce)
{
    private static readonly TimeSpan Calm = TimeSpan.FromMilliseconds(700);
    private static readonly TimeSpan IdleCutAfter = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan IdlePause = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan ShedWindow = TimeSpan.FromSeconds(2);

    private volatile string _stage = "starting";
    private volatile DemoIncident? _current;

    public DemoTraffic Traffic { get; } = new(time, settings.Seed);

    public DemoLedger Ledger { get; } = new(settings.ClientsPerKind);

    /// <summary>What the demo is doing now, for the progress display.</summary>
    public string Stage => _stage;

    /// <summary>The incident being played, if any.</summary>
    public DemoIncident? Current => _current;

    /// <summary>The number (from 1) of the incident being played.</summary>
    public int CurrentNumber { get; private set; }

    /// <summary>The server's and the proxy's ports, once they listen.</summary>
    public (int Server, int Proxy)? Ports { get; private set; }

    // The host a restart brought up, as soon as it listens: a Ctrl-C while the clients come back to it must stop this
    // one, not the old host the incident loop still holds (PlayAsync has not returned it yet).
    private DemoHost? _restartedHost;

    public async Task<DemoResult> RunAsync(CancellationToken cancellationToken)
    {
        var drainFile = Path.Combine(Path.GetTempPath(), $"lifeline-demo-{Guid.NewGuid():N}.sessions");
        DemoHost? host = null;
        TcpFaultProxy? proxy = null;
        var clients = new List<IDemoClient>();
        try
        {
            // The restart brings a new host up on this port. Port 0 would pick it from the range for outgoing connections,
            // where the proxy's reconnects to it could be given it while the host is down.
            var firstPort = LoopbackPorts.ForRestartableServer();
            try
            {
                host = await DemoHost.StartAsync(Ledger, Traffic, drainFile, firstPort, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (DemoHost.IsAddressInUse(e))
            {
                throw new DemoSetupException($"the demo server could not listen on 127.0.0.1:{firstPort.ToString(CultureInfo.InvariantCulture)}: another program took the port " +
                    "between its choice and the start. Run the demo again.");
            }
            proxy = new TcpFaultProxy(new FaultProxyOptions
            {
                UpstreamHost = "127.0.0.1",
                UpstreamPort = host.Port,
                IdleCheckInterval = TimeSpan.FromMilliseconds(100),
                TimeProvider = time,
            }).Start();
            Ports = (host.Port, proxy.EndPoint.Port);
            announce($"server 127.0.0.1:{host.Port} (session endpoint {DemoHost.SessionPath}, plain endpoint {DemoHost.PlainPath}); fault proxy 127.0.0.1:{proxy.EndPoint.Port} in front of it");

            var proxyUri = new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}");
            foreach (var record in Ledger.Clients)
            {
                clients.Add(record.Kind == ClientKind.Naive
                    ? new NaiveDemoClient(record, proxyUri, Traffic, Ledger)
                    : new LifelineDemoClient(record, proxyUri, Traffic, Ledger, settings.Seed * 7919 + record.Index * 3 + (int)record.Kind));
            }

            _stage = $"connecting {clients.Count} clients";
            announce($"{settings.ClientsPerKind} clients of each kind (Lifeline with sessions, Lifeline without sessions, ClientWebSocket with a naive reconnect loop) stream numbered messages both ways, 5 a second each");
            var connectBound = settings.ConnectBound ?? TimeSpan.FromSeconds(30);
            using (var connecting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                connecting.CancelAfter(connectBound);
                try
                {
                    await Task.WhenAll(clients.Select(c => c.StartAsync(connecting.Token))).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    // Before, this reached the CLI's last line of defence and was reported as a bug in lifeline.
                    var connected = Ledger.Clients.Count(c => c.IsConnected);
                    var within = connectBound.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
                    throw new DemoSetupException($"only {connected} of {clients.Count} demo clients connected within {within} s, so no incident was played. " +
                        "The machine may be too busy: try again, or with fewer clients (--clients 20).");
                }
            }

            _stage = "warming up";
            await Task.Delay(TimeSpan.FromSeconds(1), time, cancellationToken).ConfigureAwait(false);

            var windows = new List<IncidentWindow>();
            for (var i = 0; i < settings.Incidents.Count; i++)
            {
                var incident = settings.Incidents[i];
                Traffic.Incident = i;
                _current = incident;
                CurrentNumber = i + 1;
                _stage = $"incident {i + 1}/{settings.Incidents.Count}: {incident.Name}";
                announce($"incident {i + 1}/{settings.Incidents.Count}: {incident.Name}: {incident.What}");
                announce($"  clients see {incident.Explanation}");
                (var window, host) = await PlayAsync(i, incident, host, proxy, drainFile, cancellationToken).ConfigureAwait(false);
                windows.Add(window);
                await Task.Delay(Calm, time, cancellationToken).ConfigureAwait(false);
            }

            _current = null;
            _stage = "settling: every message sent so far is given time to arrive";
            await WaitAsync(() => Ledger.Clients.All(c => c.IsConnected), TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            // A session client still in a backoff on a loaded machine gets longer: what it has not received when the
            // demo ends counts as lost. These waits end as soon as their condition holds.
            await WaitAsync(() => Ledger.OfKind(ClientKind.Session).All(c => c.IsConnected), TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(false);
            Traffic.Sending = false;
            await WaitAsync(() => Ledger.OfKind(ClientKind.Session).All(c => c.Up.AllReceived && c.Down.AllReceived), TimeSpan.FromSeconds(15), cancellationToken)
                .ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromMilliseconds(500), time, cancellationToken).ConfigureAwait(false);
            var elapsed = Traffic.Now / 1000;
            _stage = "stopping";
            return DemoAnalysis.Analyse(Ledger, windows, settings.ClientsPerKind, settings.Seed, elapsed);
        }
        finally
        {
            _stage = "stopping";
            await StopAllAsync(clients, _restartedHost ?? host, proxy, drainFile).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the clients, then the host, then the proxy, each bounded; deletes the drain file.</summary>
    private static async Task StopAllAsync(List<IDemoClient> clients, DemoHost? host, TcpFaultProxy? proxy, string drainFile)
    {
        try
        {
            await Task.WhenAll(clients.Select(c => c.StopAsync())).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask())).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            try
            {
                if (host is not null)
                {
                    // As long as the host's own shutdown may take (its ShutdownTimeout), so it is not left listening.
                    await host.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(16)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
            finally
            {
                try
                {
                    if (proxy is not null)
                    {
                        // Bounded, and its failure kept from replacing how the run ended (a Ctrl-C's exit 130).
                        await proxy.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    }
                }
                finally
                {
                    try
                    {
                        File.Delete(drainFile);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // A temporary file; nothing to do about it here.
                    }
                }
            }
        }
    }

    private async Task<(IncidentWindow Window, DemoHost Host)> PlayAsync(int index, DemoIncident incident, DemoHost host, TcpFaultProxy proxy, string drainFile,
        CancellationToken cancellationToken)
    {
        var start = Traffic.Now;
        double fault;
        double measureEnd;
        switch (incident.Kind)
        {
            case IncidentKind.LinkDrop:
                fault = Traffic.Now;
                proxy.ResetAll();
                measureEnd = await WaitBackAsync(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(8), cancellationToken).ConfigureAwait(false);
                break;

            case IncidentKind.BlackHole:
                fault = Traffic.Now;
                proxy.SilenceAll();
                // Keep-alive finds the dead link within interval + timeout (1.5 s) plus the time to reconnect.
                measureEnd = await WaitBackAsync(TimeSpan.FromMilliseconds(2500), TimeSpan.FromSeconds(6), cancellationToken).ConfigureAwait(false);
                var stuck = proxy.Links.Where(link => link.IsSilenced && !link.IsClosed).ToList();
                if (stuck.Count > 0)
                {
                    var unaware = Ledger.OfKind(ClientKind.Naive).Count(c => c.IsConnected);
                    announce($"  the black hole ends: the proxy resets the {stuck.Count} silenced links still open, which at last tells the {unaware} naive clients that never noticed");
                    foreach (var link in stuck)
                    {
                        link.Reset();
                    }

                    await WaitBackAsync(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(4), cancellationToken).ConfigureAwait(false);
                }

                break;

            case IncidentKind.Restart:
                fault = Traffic.Now;
                var port = host.Port;
                await host.StopAsync().ConfigureAwait(false);
                announce($"  the old host stopped after {(Traffic.Now - fault) / 1000:0.0} s; a new one starts on port {port}");
                host = await StartOnPortAsync(port, drainFile, cancellationToken).ConfigureAwait(false);
                _restartedHost = host;
                measureEnd = await WaitBackAsync(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
                break;

            case IncidentKind.Shed:
                Traffic.ShedFor(ShedWindow);
                fault = Traffic.Now;
                var shed = Enum.GetValues<ClientKind>().SelectMany(kind => Traffic.PickHalf(Ledger.OfKind(kind).ToList())).ToList();
                await DemoHost.ShedAsync(shed, Traffic).ConfigureAwait(false);
                measureEnd = await WaitBackAsync(ShedWindow, TimeSpan.FromSeconds(8), cancellationToken).ConfigureAwait(false);
                Traffic.StopShedding();
                break;

            default:
                Traffic.Paused = true;
                proxy.SetIdleCut(IdleCutAfter);
                fault = Traffic.Now + IdleCutAfter.TotalMilliseconds;
                try
                {
                    await Task.Delay(IdlePause, time, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    proxy.SetIdleCut(null);
                    Traffic.Paused = false;
                }

                measureEnd = await WaitBackAsync(TimeSpan.Zero, TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                break;
        }

        return (new IncidentWindow(index, incident, start, fault, measureEnd, incident.Kind == IncidentKind.BlackHole), host);
    }

    /// <summary>Starts the new host on the old port, retrying briefly while the operating system releases it.</summary>
    private async Task<DemoHost> StartOnPortAsync(int port, string drainFile, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await DemoHost.StartAsync(Ledger, Traffic, drainFile, port, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (attempt < 20 && DemoHost.IsAddressInUse(e))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (DemoHost.IsAddressInUse(e))
            {
                // Before, this reached the CLI's last line of defence and was reported as a bug in lifeline.
                throw new DemoSetupException($"the restarted server could not listen on 127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)} again: " +
                    "another program took the port while the server restarted. Run the demo again.");
            }
        }
    }

    /// <summary>Waits at least <paramref name="minimum"/>, then until every client is connected or <paramref name="bound"/> passed; returns when (ms).</summary>
    private async Task<double> WaitBackAsync(TimeSpan minimum, TimeSpan bound, CancellationToken cancellationToken)
    {
        if (minimum > TimeSpan.Zero)
        {
            await Task.Delay(minimum, time, cancellationToken).ConfigureAwait(false);
        }

        await WaitAsync(() => Ledger.Clients.All(c => c.IsConnected), bound - minimum, cancellationToken).ConfigureAwait(false);
        return Traffic.Now;
    }

    private async Task WaitAsync(Func<bool> condition, TimeSpan bound, CancellationToken cancellationToken)
    {
        var until = Traffic.Now + bound.TotalMilliseconds;
        while (!condition() && Traffic.Now < until)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), time, cancellationToken).ConfigureAwait(false);
        }
    }
}
