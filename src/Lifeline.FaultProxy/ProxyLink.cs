using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Lifeline.FaultProxy.Toxics;

namespace Lifeline.FaultProxy;

/// <summary>
/// One client connection through the proxy and its connection to the upstream server, with a pump for
/// each direction. Faults can be applied to this link alone.
/// </summary>
/// <remarks>Thread-safe: faults may be switched while the pumps run.</remarks>
public sealed class ProxyLink : IAsyncDisposable
{
    private const int BufferSize = 16 * 1024;

    private readonly Socket _client;
    private readonly Socket _upstream;
    private readonly TcpFaultProxy _proxy;
    private readonly DirectionalToxics _toxics = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeProvider _time;
    private long _lastActivity;
    private long _bytesUpstream;
    private long _bytesDownstream;
    private int _silenced;
    private int _forgotten;
    private int _ended;
    private Task _pumps = Task.CompletedTask;
    private DelayLine? _upstreamLine;
    private DelayLine? _downstreamLine;

    internal ProxyLink(long id, Socket client, Socket upstream, TcpFaultProxy proxy, TimeProvider time)
    {
        Id = id;
        _client = client;
        _upstream = upstream;
        _proxy = proxy;
        _time = time;
        _lastActivity = time.GetTimestamp();
        ClientEndPoint = client.RemoteEndPoint;
    }

    /// <summary>A number unique within the proxy, in order of acceptance.</summary>
    public long Id { get; }

    /// <summary>The address of the client that connected to the proxy.</summary>
    public EndPoint? ClientEndPoint { get; }

    /// <summary>Bytes forwarded from client to server.</summary>
    public long BytesUpstream => Interlocked.Read(ref _bytesUpstream);

    /// <summary>Bytes forwarded from server to client.</summary>
    public long BytesDownstream => Interlocked.Read(ref _bytesDownstream);

    /// <summary>How long since a byte last crossed the link either way.</summary>
    public TimeSpan IdleFor => _time.GetElapsedTime(Interlocked.Read(ref _lastActivity));

    /// <summary>True once the link has been closed, reset or ended by either side.</summary>
    public bool IsClosed => Volatile.Read(ref _ended) != 0;

    /// <summary>True when the link was silenced: it stays open but swallows everything.</summary>
    public bool IsSilenced => Volatile.Read(ref _silenced) != 0;

    /// <summary>True when the link was forgotten: the next packet from either side resets it (see <see cref="Forget"/>).</summary>
    public bool IsForgotten => Volatile.Read(ref _forgotten) != 0;

    /// <summary>Completes when both pumps have ended.</summary>
    public Task Completion => _pumps;

    /// <summary>Adds a fault to this link only.</summary>
    public void AddToxic(IToxic toxic, Direction direction = Direction.Both) => _toxics.Add(toxic, direction);

    /// <summary>Removes a fault added with <see cref="AddToxic"/>.</summary>
    public bool RemoveToxic(IToxic toxic) => _toxics.Remove(toxic);

    /// <summary>Sends a TCP RST to both sides at once: an abrupt loss, as when a process or a middlebox dies.</summary>
    public void Reset()
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        foreach (var socket in new[] { _client, _upstream })
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0); // linger 0 makes Close send RST
                socket.Close();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already gone: the point was to end it.
            }
        }

        StopPumps();
        _proxy.OnLinkEnded(this);
    }

    /// <summary>Closes both TCP connections with a FIN and no WebSocket Close frame: what a proxy timing out looks like.</summary>
    public void CloseWithFin()
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        foreach (var socket in new[] { _client, _upstream })
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
                socket.Close();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already gone.
            }
        }

        StopPumps();
        _proxy.OnLinkEnded(this);
    }

    /// <summary>
    /// Stops the pumps. The caller won the link's end, but a dispose that lost it may already have waited for the pumps
    /// (which end once the sockets are closed) and disposed the stop source: then they are stopped already.
    /// </summary>
    private void StopPumps()
    {
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed after the pumps ended: nothing left to stop.
        }
    }

    /// <summary>Keeps the link open but lets nothing through either way from now on (a silent drop).</summary>
    public void Silence() => Volatile.Write(ref _silenced, 1);

    /// <summary>Forgets the flow as a stateful firewall does after its timeout: nothing is sent now, and the next packet from either side resets both.</summary>
    public void Forget() => Volatile.Write(ref _forgotten, 1);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        CloseWithFin();
        try
        {
            await _pumps.ConfigureAwait(false);
        }
        finally
        {
            _stop.Dispose();
        }
    }

    internal void Start()
    {
        _pumps = Task.WhenAll(
            PumpAsync(_client, _upstream, Direction.Upstream),
            PumpAsync(_upstream, _client, Direction.Downstream));
        _ = _pumps.ContinueWith(_ => EndQuietly(), TaskScheduler.Default);
    }

    private void EndQuietly()
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        _client.Dispose();
        _upstream.Dispose();
        _proxy.OnLinkEnded(this);
    }

    private async Task PumpAsync(Socket source, Socket destination, Direction direction)
    {
        CancellationToken token;
        try
        {
            token = _stop.Token;
        }
        catch (ObjectDisposedException)
        {
            return; // disposed before it started (the proxy was disposed as the link opened): nothing to pump
        }

        LinkFlow.Enter(); // this direction's own schedule for the toxics that pace it (its delay line inherits it)
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        DelayLine? line = null; // made at the first delayed chunk; from then on a chunk without delay must not overtake one
        try
        {
            while (!token.IsCancellationRequested)
            {
                var read = await source.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, token).ConfigureAwait(false);
                if (IsForgotten)
                {
                    // A packet (data or FIN) for a flow the middlebox no longer knows: it answers with a reset.
                    Reset();
                    return;
                }

                if (read == 0)
                {
                    var finDelay = NextDelay(direction);
                    if (finDelay <= TimeSpan.Zero && (line is null || line.IsEmpty))
                    {
                        await PassFinAsync(destination, direction, token).ConfigureAwait(false);
                        return;
                    }

                    // Behind the chunks still on their way, as TCP orders it, and delayed as they are.
                    line ??= StartDelayLine(destination, direction, token);
                    await line.AddFinAsync(finDelay, token).ConfigureAwait(false);
                    await line.CompleteAsync().ConfigureAwait(false); // throws what ended the line early, for the catch below
                    return;
                }

                Interlocked.Exchange(ref _lastActivity, _time.GetTimestamp());
                if (IsSilenced)
                {
                    continue;
                }

                var delay = NextDelay(direction);
                if (delay <= TimeSpan.Zero && (line is null || line.IsEmpty))
                {
                    await ForwardAsync(destination, buffer.AsMemory(0, read), direction, token).ConfigureAwait(false);
                    continue;
                }

                line ??= StartDelayLine(destination, direction, token);
                if (!await line.AddAsync(buffer.AsMemory(0, read), delay, token).ConfigureAwait(false))
                {
                    await line.CompleteAsync().ConfigureAwait(false); // throws what ended it, for the catch below
                    return;
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A reset on one side is passed on as a reset to the other, unless the proxy ended the link itself or the
            // link is silenced; a black hole holds it until it ends, as it holds data.
            if (e is SocketException { SocketErrorCode: SocketError.ConnectionReset } && !IsClosed && !IsSilenced
                && await WaitWhileHeldAsync(direction, token).ConfigureAwait(false) && !IsClosed && !IsSilenced)
            {
                Reset();
            }
        }
        finally
        {
            try
            {
                if (line is not null)
                {
                    // After a FIN the line has emptied already; after a failure, a reset or a cut what waits is dropped
                    // (a line held by a black hole would otherwise keep the pump from ending).
                    await line.AbandonAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// The source sent FIN: passes it on so the other side sees an orderly TCP close, once a black hole lets it (a dead
    /// path carries a FIN no more than data).
    /// </summary>
    private async ValueTask PassFinAsync(Socket destination, Direction direction, CancellationToken token)
    {
        if (!IsSilenced && await WaitWhileHeldAsync(direction, token).ConfigureAwait(false) && !IsSilenced && !IsForgotten)
        {
            destination.Shutdown(SocketShutdown.Send);
        }
    }

    private DelayLine StartDelayLine(Socket destination, Direction direction, CancellationToken token)
    {
        var line = new DelayLine(_time, (chunk, ct) => ForwardAsync(destination, chunk, direction, ct), ct => PassFinAsync(destination, direction, ct), token);
        Volatile.Write(ref direction == Direction.Upstream ? ref _upstreamLine : ref _downstreamLine, line);
        return line;
    }

    /// <summary>What of a direction waits out a latency, if latency ever applied to it (for tests to wait on).</summary>
    internal DelayLine? DelayLineFor(Direction direction) =>
        Volatile.Read(ref direction == Direction.Upstream ? ref _upstreamLine : ref _downstreamLine);

    /// <summary>The delay the latency toxics of both chains give the next chunk of a direction.</summary>
    private TimeSpan NextDelay(Direction direction) =>
        ToxicChain.NextDelay(_proxy.ToxicsFor(direction)) + ToxicChain.NextDelay(_toxics.For(direction));

    /// <summary>
    /// Waits while a black hole holds this direction (for a FIN or a reset, which cross a dead path no more than data
    /// does). False when the link ended meanwhile.
    /// </summary>
    private async ValueTask<bool> WaitWhileHeldAsync(Direction direction, CancellationToken token)
    {
        try
        {
            while (true)
            {
                var proxyChanged = _proxy.ToxicsChangedFor(direction);
                var linkChanged = _toxics.ChangedFor(direction);
                if (!ToxicChain.Holds(_proxy.ToxicsFor(direction)) && !ToxicChain.Holds(_toxics.For(direction)))
                {
                    return true;
                }

                await Task.WhenAny(proxyChanged, linkChanged).WaitAsync(token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Runs a chunk through the toxics and writes it; while a black hole is in either chain the chunk waits here and
    /// the pump reads nothing more, so the sender's TCP stalls, until the hole is removed or the link is cut.
    /// </summary>
    private async ValueTask ForwardAsync(Socket destination, ReadOnlyMemory<byte> chunk, Direction direction, CancellationToken token)
    {
        while (true)
        {
            // Take the change signals before the chains, so a removal in between is not missed.
            var proxyChanged = _proxy.ToxicsChangedFor(direction);
            var linkChanged = _toxics.ChangedFor(direction);
            var proxyToxics = _proxy.ToxicsFor(direction);
            var linkToxics = _toxics.For(direction);
            if (!ToxicChain.Holds(proxyToxics) && !ToxicChain.Holds(linkToxics))
            {
                // Without the latency toxics: the pump has delayed the chunk already (a DelayLine).
                await ToxicChain.RunAsync(ToxicChain.WithoutLatency(proxyToxics), ToxicChain.WithoutLatency(linkToxics), chunk,
                    (piece, ct) => WriteAsync(destination, piece, direction, ct), token).ConfigureAwait(false);
                return;
            }

            await Task.WhenAny(proxyChanged, linkChanged).WaitAsync(token).ConfigureAwait(false);
        }
    }

    private async ValueTask WriteAsync(Socket destination, ReadOnlyMemory<byte> chunk, Direction direction, CancellationToken cancellationToken)
    {
        // Bandwidth and slicer toxics write a chunk piece by piece after ForwardAsync's check: a black hole added
        // meanwhile holds the pieces still to come, as it holds the next chunk.
        if (!await WaitWhileHeldAsync(direction, cancellationToken).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            return; // the link ended while held
        }

        if (IsSilenced || IsForgotten)
        {
            return; // a forgotten flow sends nothing, chunks still on their way under latency included
        }

        while (!chunk.IsEmpty)
        {
            var sent = await destination.SendAsync(chunk, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            chunk = chunk[sent..];
            Interlocked.Add(ref direction == Direction.Upstream ? ref _bytesUpstream : ref _bytesDownstream, sent);
        }

        Interlocked.Exchange(ref _lastActivity, _time.GetTimestamp());
    }
}
