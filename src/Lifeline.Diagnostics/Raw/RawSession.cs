using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Lifeline.Diagnostics.Probe;

namespace Lifeline.Diagnostics.Raw;

/// <summary>
/// Reads a <see cref="RawWebSocket"/> on one background loop (so that timeouts never cut a frame in half), answers
/// the server's pings, and lets the caller time its own pings or wait silently for the connection to end.
/// </summary>
/// <remarks>
/// <see cref="PingAsync"/> is for one caller at a time. Pongs wait in a small bounded queue that drops the oldest
/// when full: an unsolicited flood of pongs costs nothing but those pongs.
/// </remarks>
internal sealed class RawSession : IAsyncDisposable
{
    /// <summary>The longest a close waits for the server's answer: a stop must not wait a long ping timeout per connection.</summary>
    internal static readonly TimeSpan CloseAnswerWait = TimeSpan.FromSeconds(2);

    private readonly RawWebSocket _socket;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly Channel<RawFrame> _pongs = Channel.CreateBounded<RawFrame>(new BoundedChannelOptions(16)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
        SingleWriter = true,
    });

    private readonly TaskCompletionSource<ConnectionEnd> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reader;
    private int _dataFrames;
    private int _serverPings;
    private int _pongsReceived;
    private long _lastPongAt; // 0 until a pong arrived
    private ushort _nextPing;
    private int _closeSent; // 1 once this side sent its Close frame

    public RawSession(RawWebSocket socket, TimeProvider time)
    {
        _socket = socket;
        _time = time;
        _started = time.GetTimestamp();
        _reader = Task.Run(ReadLoopAsync);
    }

    public int DataFrames => Volatile.Read(ref _dataFrames);

    public int ServerPings => Volatile.Read(ref _serverPings);

    /// <summary>Pongs received, whichever ping they answer.</summary>
    public int PongsReceived => Volatile.Read(ref _pongsReceived);

    /// <summary>The session's age when the last pong arrived; null before the first.</summary>
    public TimeSpan? LastPongAge => Interlocked.Read(ref _lastPongAt) is not 0 and var at ? _time.GetElapsedTime(_started, at) : null;

    /// <summary>Completes when the connection ends.</summary>
    public Task<ConnectionEnd> Ended => _ended.Task;

    public TimeSpan Elapsed => _time.GetElapsedTime(_started);

    /// <summary>Sends a ping and waits for its pong: the round-trip time, or null when none came in time or the link ended.</summary>
    public async Task<TimeSpan?> PingAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_ended.Task.IsCompleted)
        {
            return null;
        }

        var payload = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(payload, ++_nextPing);
        var sent = _time.GetTimestamp();
        try
        {
            await _socket.SendPingAsync(payload, cancellationToken).ConfigureAwait(false);
            using var wait = new CancellationTokenSource(timeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(wait.Token, cancellationToken);
            while (true)
            {
                var pong = await _pongs.Reader.ReadAsync(linked.Token).ConfigureAwait(false);
                if (pong.Payload.AsSpan().SequenceEqual(payload))
                {
                    return _time.GetElapsedTime(sent);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ChannelClosedException or ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>Sends a ping without waiting for its pong (see <see cref="PongsReceived"/>): false when the link is gone.</summary>
    public async Task<bool> SendPingAsync(CancellationToken cancellationToken)
    {
        if (_ended.Task.IsCompleted)
        {
            return false;
        }

        var payload = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(payload, ++_nextPing);
        try
        {
            await _socket.SendPingAsync(payload, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Waits silently (sending nothing) for up to <paramref name="duration"/>; the end if the link ended, else null.</summary>
    public async Task<ConnectionEnd?> ObserveAsync(TimeSpan duration, CancellationToken cancellationToken)
    {
        try
        {
            return await _ended.Task.WaitAsync(duration, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    /// <summary>Marks a silent death (a ping after silence went unanswered); the end already recorded if there is one.</summary>
    public ConnectionEnd MarkSilent()
    {
        _ended.TrySetResult(new ConnectionEnd(ConnectionEndKind.Silent, Elapsed));
        return _ended.Task.Result;
    }

    /// <summary>
    /// Sends a Close frame, then waits (at most <see cref="CloseAnswerWait"/>, and bounded by
    /// <paramref name="cancellationToken"/>) for the server's answer or the connection's end; failures are ignored (the
    /// link may already be gone).
    /// </summary>
    /// <remarks>
    /// Waiting is the close handshake RFC 6455 7.1.1 asks for: the server closes the TCP connection first. A client that
    /// closed its socket right after its Close frame could make the server record 1006 anyway: Kestrel cancels the
    /// request when the client's FIN arrives, sometimes before the handler has read the Close frame that came with it.
    /// </remarks>
    public async Task CloseAsync(int code, CancellationToken cancellationToken)
    {
        await SendCloseOnceAsync(code, null, cancellationToken).ConfigureAwait(false);
        try
        {
            await _ended.Task.WaitAsync(CloseAnswerWait, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            // No answer in time: the caller closes the socket anyway.
        }
    }

    /// <summary>
    /// Sends a Close frame with 1000 unless the connection has ended already, so the server records a normal closure rather
    /// than 1006. Bounded by <paramref name="timeout"/>: a peer that reads nothing must not hold the caller.
    /// </summary>
    public async Task CloseIfOpenAsync(TimeSpan timeout)
    {
        if (_ended.Task.IsCompleted)
        {
            return; // the server closed it, or it was cut: nothing to close, or no one to tell
        }

        using var bound = new CancellationTokenSource(timeout, _time);
        await CloseAsync(1000, bound.Token).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _socket.DisposeAsync().ConfigureAwait(false);
        try
        {
            await _reader.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // Stopped on purpose.
        }

        _stop.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var frame = await _socket.ReadFrameAsync(_stop.Token).ConfigureAwait(false);
                switch (frame.Opcode)
                {
                    case RawFrame.Ping:
                        Interlocked.Increment(ref _serverPings);
                        await _socket.SendPongAsync(frame.Payload, _stop.Token).ConfigureAwait(false);
                        break;
                    case RawFrame.Pong:
                        Interlocked.Exchange(ref _lastPongAt, _time.GetTimestamp());
                        Interlocked.Increment(ref _pongsReceived);
                        _pongs.Writer.TryWrite(frame);
                        break;
                    case RawFrame.Close:
                        var code = frame.Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(frame.Payload) : (int?)null;
                        var reason = frame.Payload.Length > 2 ? Encoding.UTF8.GetString(frame.Payload, 2, frame.Payload.Length - 2) : null;
                        // Answer before reporting the end, so a caller that stops at once does not cut the answer off.
                        var end = new ConnectionEnd(ConnectionEndKind.CloseFrame, Elapsed, code, reason);
                        await SendCloseOnceAsync(code ?? 1000, null, _stop.Token).ConfigureAwait(false); // the reader refuses codes no endpoint may send
                        _ended.TrySetResult(end);
                        return;
                    default:
                        Interlocked.Increment(ref _dataFrames);
                        break;
                }
            }
        }
        catch (FrameException e)
        {
            // Fail the connection as a client must (RFC 6455 7.1.7): say why in a Close frame, then stop reading.
            var end = new ConnectionEnd(ConnectionEndKind.ProtocolError, Elapsed, e.CloseCode, e.Message);
            await SendCloseOnceAsync(e.CloseCode, e.Message, _stop.Token).ConfigureAwait(false);
            _ended.TrySetResult(end);
        }
        catch (EndOfStreamException)
        {
            _ended.TrySetResult(new ConnectionEnd(ConnectionEndKind.Fin, Elapsed));
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException)
        {
            _ended.TrySetResult(new ConnectionEnd(IsReset(e) || !_stop.IsCancellationRequested ? ConnectionEndKind.Reset : ConnectionEndKind.StillOpen, Elapsed));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            _ended.TrySetResult(new ConnectionEnd(ConnectionEndKind.StillOpen, Elapsed));
        }
        finally
        {
            _pongs.Writer.TryComplete();
        }
    }

    /// <summary>
    /// Sends this side's one Close frame (an answer, a protocol error, or the caller's close); a second one is not sent, as
    /// RFC 6455 5.5.1 allows one per side. Failures are ignored: the connection is gone already.
    /// </summary>
    private async Task SendCloseOnceAsync(int code, string? reason, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _closeSent, 1) == 1)
        {
            return;
        }

        try
        {
            await _socket.SendCloseAsync(code, cancellationToken, reason).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The connection is gone already; nothing to close.
        }
    }

    private static bool IsReset(Exception e) =>
        (e as SocketException ?? e.InnerException as SocketException)?.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted;
}
