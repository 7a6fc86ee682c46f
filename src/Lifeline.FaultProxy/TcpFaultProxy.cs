using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Lifeline.FaultProxy.Toxics;

namespace Lifeline.FaultProxy;

/// <summary>
/// A TCP proxy that injects faults between a client and a server: resets, FINs without a Close frame,
/// black holes, latency, bandwidth limits, idle cuts, refused connections and sliced writes. Faults are
/// switched at run time for every link or for one link.
/// </summary>
/// <remarks>Thread-safe. Intended for tests and diagnostics on loopback, not for production traffic.</remarks>
public sealed partial class TcpFaultProxy : IAsyncDisposable
{
    /// <summary>How soon a timed refusal tries again to listen when its port was taken meanwhile.</summary>
    private static readonly TimeSpan RelistenRetry = TimeSpan.FromMilliseconds(250);

    /// <summary>How soon the accept loop tries again after a failed accept (out of file descriptors, say).</summary>
    private static readonly TimeSpan AcceptRetry = TimeSpan.FromMilliseconds(100);

    private readonly FaultProxyOptions _options;
    private readonly ConcurrentDictionary<long, ProxyLink> _links = new();
    private readonly DirectionalToxics _toxics = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _listenLock = new();
    private Socket? _listener;
    private TimedRefusal? _timedRefusal;
    private Task _idleMonitor = Task.CompletedTask;
    private long _nextId;
    private long _accepted;
    private (TimeSpan After, IdleCutKind Kind)? _idleCut;

    /// <summary>Creates a proxy; call <see cref="Start"/> to listen.</summary>
    public TcpFaultProxy(FaultProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    /// <summary>Creates a proxy on 127.0.0.1 (free port) in front of the given upstream.</summary>
    public TcpFaultProxy(string upstreamHost, int upstreamPort)
        : this(new FaultProxyOptions { UpstreamHost = upstreamHost, UpstreamPort = upstreamPort })
    {
    }

    /// <summary>
    /// Raised when a link is established (client accepted and upstream connected), before it forwards anything: a
    /// handler may add the link's own faults. An exception from a handler is ignored, as for the other events: the
    /// proxy goes on forwarding and cutting.
    /// </summary>
    public event Action<ProxyLink>? LinkOpened;

    /// <summary>Raised once when a link ends, for whatever reason.</summary>
    public event Action<ProxyLink>? LinkEnded;

    /// <summary>Raised when a client connected but the upstream could not be reached (the client is then reset); gives the client's end point and the error.</summary>
    public event Action<EndPoint?, Exception>? UpstreamConnectFailed;

    /// <summary>
    /// Raised when accepting a connection fails while the proxy listens, typically with "too many open files" (EMFILE).
    /// The proxy goes on listening and tries again every 100 ms; the event is raised once per run of failures, not on
    /// every try.
    /// </summary>
    public event Action<SocketException>? AcceptFailed;

    /// <summary>The address the proxy listens on (the real port once started).</summary>
    public IPEndPoint EndPoint { get; private set; } = new(IPAddress.Loopback, 0);

    /// <summary>The links open now.</summary>
    public IReadOnlyCollection<ProxyLink> Links => [.. _links.Values.OrderBy(link => link.Id)];

    /// <summary>How many client connections have been accepted and linked since start.</summary>
    public long AcceptedCount => Interlocked.Read(ref _accepted);

    /// <summary>True while new connections are refused.</summary>
    public bool IsRefusingConnections
    {
        get
        {
            lock (_listenLock)
            {
                return _listener is null && EndPoint.Port != 0;
            }
        }
    }

    /// <summary>The current idle cut, if any.</summary>
    public (TimeSpan After, IdleCutKind Kind)? IdleCut => _idleCut;

    internal ImmutableArray<IToxic> ToxicsFor(Direction direction) => _toxics.For(direction);

    internal Task ToxicsChangedFor(Direction direction) => _toxics.ChangedFor(direction);

    /// <summary>Binds the listening socket and starts accepting.</summary>
    public TcpFaultProxy Start()
    {
        lock (_listenLock)
        {
            if (EndPoint.Port != 0)
            {
                throw new InvalidOperationException("The proxy is already started.");
            }

            Listen(_options.ListenEndPoint);
        }

        _idleMonitor = MonitorIdleAsync(_stop.Token);
        return this;
    }

    /// <summary>Adds a fault for every link, existing and future.</summary>
    public void AddToxic(IToxic toxic, Direction direction = Direction.Both) => _toxics.Add(toxic, direction);

    /// <summary>Removes a fault added with <see cref="AddToxic"/>; returns false when it was not there.</summary>
    public bool RemoveToxic(IToxic toxic) => _toxics.Remove(toxic);

    /// <summary>Removes every proxy-wide fault and the idle cut, and accepts connections again.</summary>
    /// <exception cref="SocketException">Refusing, and another socket took the port meanwhile: the faults are cleared, the proxy goes on refusing.</exception>
    public void ClearFaults()
    {
        _toxics.Clear();
        _idleCut = null;
        AcceptConnections();
    }

    /// <summary>The proxy-wide toxics for one direction.</summary>
    public IReadOnlyList<IToxic> GetToxics(Direction direction) => _toxics.For(direction);

    /// <summary>Resets (RST) every open link.</summary>
    public void ResetAll()
    {
        foreach (var link in _links.Values)
        {
            link.Reset();
        }
    }

    /// <summary>Closes every open link with a FIN and no Close frame.</summary>
    public void CloseAllWithFin()
    {
        foreach (var link in _links.Values)
        {
            link.CloseWithFin();
        }
    }

    /// <summary>Silences every open link: open, but nothing crosses it any more.</summary>
    public void SilenceAll()
    {
        foreach (var link in _links.Values)
        {
            link.Silence();
        }
    }

    /// <summary>Cuts links that stayed idle (no byte either way) for <paramref name="after"/>, the way a load balancer does. Null removes it.</summary>
    public void SetIdleCut(TimeSpan? after, IdleCutKind kind = IdleCutKind.Reset)
    {
        if (after is { } value && value <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(after), after, "The idle cut must be positive, or null to remove it.");
        }

        _idleCut = after is { } a ? (a, kind) : null;
    }

    /// <summary>
    /// Stops listening so that new connections are refused by the operating system (ECONNREFUSED), for
    /// <paramref name="duration"/> or until <see cref="AcceptConnections"/>. Open links are not touched. If another
    /// socket took the port when the period ends, the proxy goes on refusing and tries to listen again every 250 ms.
    /// </summary>
    public void RefuseConnections(TimeSpan? duration = null)
    {
        if (duration is { } d && (d <= TimeSpan.Zero || d > FaultProxyOptions.LongestTimer))
        {
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "The refusal period must be positive and at most 49 days, or null for 'until AcceptConnections'.");
        }

        lock (_listenLock)
        {
            StopListening();
            _timedRefusal?.Dispose();
            _timedRefusal = duration is { } period ? new TimedRefusal(this, period) : null;
        }
    }

    /// <summary>Listens again after <see cref="RefuseConnections"/>.</summary>
    /// <exception cref="SocketException">Another socket took the port meanwhile: the proxy goes on refusing (and a timed
    /// refusal goes on trying to listen again).</exception>
    public void AcceptConnections()
    {
        lock (_listenLock)
        {
            ListenAgain();
            _timedRefusal?.Dispose();
            _timedRefusal = null;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        _stop.Cancel();
        lock (_listenLock)
        {
            _timedRefusal?.Dispose();
            _timedRefusal = null;
            StopListening();
        }

        foreach (var link in _links.Values)
        {
            await link.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            await _idleMonitor.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Expected on stop.
        }

        _stop.Dispose();
    }

    internal void OnLinkEnded(ProxyLink link)
    {
        if (_links.TryRemove(link.Id, out _))
        {
            Raise(LinkEnded, link);
        }
    }

    // Called under _listenLock.
    private void ListenAgain()
    {
        if (_listener is null && EndPoint.Port != 0 && !_stop.IsCancellationRequested)
        {
            Listen(EndPoint);
        }
    }

    /// <summary>The end of a <see cref="RefuseConnections(TimeSpan?)"/> period, called by its timer.</summary>
    private void EndRefusal(TimedRefusal refusal)
    {
        lock (_listenLock)
        {
            if (!ReferenceEquals(_timedRefusal, refusal))
            {
                return; // replaced, ended or disposed since
            }

            try
            {
                ListenAgain();
                refusal.Dispose();
                _timedRefusal = null;
            }
            catch (SocketException)
            {
                // Another socket took the port during the refusal. An exception out of a timer callback would end the
                // whole process, so go on refusing and try again shortly; AcceptConnections or DisposeAsync ends this.
                refusal.RetryAfter(RelistenRetry);
            }
        }
    }

    // Called under _listenLock.
    private void Listen(IPEndPoint endPoint)
    {
        var listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(endPoint);
            listener.Listen(512);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _listener = listener;
        _ = AcceptLoopAsync(listener, _stop.Token);
    }

    // Called under _listenLock. The field is cleared before the socket is closed, so an accept that fails because of
    // the close sees that its listener is gone and ends its loop.
    private void StopListening()
    {
        var listener = _listener;
        _listener = null;
        listener?.Dispose();
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken cancellationToken)
    {
        await Task.Yield(); // started under _listenLock: links (and their events' handlers) never run under it
        var failing = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                BeforeAcceptForTest?.Invoke();
                client = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e) when (IsListeningOn(listener))
            {
                // The port is still open, so one failed accept must not end the loop: with the loop gone, every later
                // connection would wait in the backlog for ever. Out of descriptors (EMFILE), the connection stays
                // queued: wait a little for some to come free rather than spin.
                if (!failing)
                {
                    failing = true;
                    Raise(AcceptFailed, e);
                }

                if (!await WaitBeforeAcceptingAgainAsync(cancellationToken).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return; // The listener was closed: refusing, or disposed.
            }

            failing = false;
            _ = LinkAsync(client, cancellationToken);
        }
    }

    /// <summary>
    /// Tests: runs before each accept; a <see cref="SocketException"/> it throws stands for a failed accept. (Running out
    /// of descriptors for real is no test: a .NET process at its limit was seen to abort in about one run in ten.)
    /// </summary>
    internal Action? BeforeAcceptForTest { get; set; }

    private bool IsListeningOn(Socket listener)
    {
        lock (_listenLock)
        {
            return ReferenceEquals(_listener, listener);
        }
    }

    /// <summary>Waits <see cref="AcceptRetry"/>; false when the proxy was disposed meanwhile.</summary>
    private async Task<bool> WaitBeforeAcceptingAgainAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(AcceptRetry, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task LinkAsync(Socket client, CancellationToken cancellationToken)
    {
        Socket? upstream = null;
        try
        {
            client.NoDelay = true;
            upstream = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }; // EMFILE can strike here too
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.ConnectTimeout);
            await upstream.ConnectAsync(_options.UpstreamHost, _options.UpstreamPort, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            // The upstream is unreachable (or no socket could be made for it): the client sees what it would see
            // without the proxy, a reset.
            upstream?.Dispose();
            Raise(UpstreamConnectFailed, RemoteEndPointOf(client), e);
            ResetAndDispose(client);
            return;
        }

        var link = new ProxyLink(Interlocked.Increment(ref _nextId), client, upstream, this, _options.TimeProvider);
        _links[link.Id] = link;
        if (cancellationToken.IsCancellationRequested)
        {
            // Disposed while the upstream connected: its pass over the links may have missed this one.
            link.CloseWithFin();
            return;
        }

        Interlocked.Increment(ref _accepted);
        Raise(LinkOpened, link);
        if (!link.IsClosed)
        {
            link.Start();
        }
    }

    /// <summary>The peer's address, or null when the socket can no longer tell (the client reset it already).</summary>
    private static EndPoint? RemoteEndPointOf(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private static void ResetAndDispose(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
            // Already reset by the client: closing it is all that is left.
        }

        socket.Dispose();
    }

    /// <summary>
    /// Raises an event. A handler's exception must not leave a link unstarted, end the idle cut or reach the socket
    /// code that raised it (and from there a dispose); the proxy is a test tool and its job is to go on.
    /// </summary>
    private static void Raise<T>(Action<T>? handler, T argument)
    {
        try
        {
            handler?.Invoke(argument);
        }
#pragma warning disable CA1031 // Any exception: see above.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private static void Raise<T1, T2>(Action<T1, T2>? handler, T1 first, T2 second)
    {
        try
        {
            handler?.Invoke(first, second);
        }
#pragma warning disable CA1031 // Any exception: see Raise{T}.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private async Task MonitorIdleAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.IdleCheckInterval, _options.TimeProvider);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            if (_idleCut is not { } cut)
            {
                continue;
            }

            foreach (var link in _links.Values)
            {
                if (link.IsSilenced || link.IsForgotten || link.IdleFor < cut.After)
                {
                    continue;
                }

                switch (cut.Kind)
                {
                    case IdleCutKind.Reset:
                        link.Reset();
                        break;
                    case IdleCutKind.Fin:
                        link.CloseWithFin();
                        break;
                    case IdleCutKind.ResetOnNextPacket:
                        link.Forget();
                        break;
                    default:
                        link.Silence();
                        break;
                }
            }
        }
    }
}
