using System.Buffers;
using System.Globalization;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using Lifeline.CloseCodes;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.Client;

/// <summary>Who may call ReceiveAsync on the current socket (ClientWebSocket allows one receive at a time).</summary>
internal enum ReceiveOwner
{
    /// <summary>Nobody: the next reader or the loop may take it.</summary>
    None,

    /// <summary>The connection's receive loop (a zero-byte wait for data, a read-ahead, or the end of the connection).</summary>
    Loop,

    /// <summary>The loop saw data arrive while a reader waited and hands the socket to that reader.</summary>
    HandedToReader,

    /// <summary>
    /// The readers: whoever holds the reader gate reads straight into its own memory. A reader that read a message keeps
    /// the socket between its reads (one interlocked operation less per message each way); the loop takes it back by
    /// entering the gate itself when readers pause, when the client stops, or (session mode) when sent messages await
    /// the server's acks.
    /// </summary>
    Reader,
}

/// <summary>How a reader's read of the socket ended the connection; the loop turns it into the close record.</summary>
internal enum ReceiveOutcome
{
    None,
    CloseFrame,
    TooBig,
    Failed,
}

public sealed partial class LifelineClient
{
    private const int PooledStart = 4096;

    /// <summary>
    /// How long the loop leaves the socket to the application after it read a message before reading ahead itself
    /// (counted from when the loop last saw a read, so between one and two of these after the last read). Within it
    /// an application that reads, answers and reads again sees the frames in the order a raw socket would.
    /// </summary>
    private TimeSpan ReadAheadDelay => _options.ReadAheadDelay;

    private readonly ReaderGate _readerGate = new();
    private readonly SemaphoreSlim _loopWake = new(0, 1);
    private int _watchdogFired;
    private KeepAliveMonitor? _keepAlive; // the current connection's, when Lifeline does the keep-alive

    // Receive hand-off state; guarded by RxLock (the receive buffer's lock).
    private ClientWebSocket? _rxSocket;
    private ReceiveOwner _rxOwner;
    private bool _rxPeeked;
    private WebSocketMessageType _rxPeekType;
    private bool _rxPeekEnded;
    private Task<ValueWebSocketReceiveResult>? _rxPendingPeek;
    private ReceiveOutcome _rxOutcome;
    private Exception? _rxOutcomeError;
    private TaskCompletionSource? _rxWaiter;
    private long _rxReaderIdleAt;
    private long _rxReadsSeen; // _receivedByReaders when the loop last looked: a change means a reader read meanwhile
    private ITimer? _rxWatchdog;

    // Session mode: a frame a reader read that the loop must act on (it may end the connection); set with _rxOwner Loop.
    private byte[]? _rxLoopFrame;
    private int _rxLoopFrameLength;
    private WebSocketMessageType _rxLoopFrameType;

    private Lock RxLock => _incoming.SyncRoot;

    /// <summary>
    /// Receives the next whole message into <paramref name="destination"/>: the allocation-free way to read. Returns
    /// <see cref="LifelineReceiveStatus.Message"/> with its length and type; <see cref="LifelineReceiveStatus.DestinationTooSmall"/>
    /// with the length needed when it does not fit (nothing is consumed: call again with more room); or
    /// <see cref="LifelineReceiveStatus.Closed"/> once the client is closed and every message was read. Waits across
    /// reconnects. <see cref="Messages"/> and <see cref="ReadAllAsync"/> read from the same stream of messages.
    /// </summary>
    /// <remarks>
    /// Ownership: the client writes into <paramref name="destination"/> only until the returned task completes, and
    /// never after it was cancelled; the bytes are the caller's from then on. When the application is waiting and
    /// nothing was read ahead, the socket is read on its behalf straight into <paramref name="destination"/> (no copy,
    /// no queue). One reader at a time: concurrent calls are served in turn. Cancelling a wait never aborts the connection.
    /// </remarks>
    public ValueTask<LifelineReceiveResult> ReceiveAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.CanBeCanceled || !_readerGate.TryEnter())
        {
            return ReceiveCoreAsync(destination, retain: false, cancellationToken);
        }

        // The per-message path: nobody else reading, no token, the socket free and nothing read ahead. The socket is read
        // straight into the caller's memory; only a read that does not complete at once goes asynchronous.
        var leave = true;
        try
        {
            while (true)
            {
                var socket = TryTakeSocketForDirectRead();
                if (socket is null)
                {
                    leave = false;
                    return ReceiveThenLeaveGateAsync(destination);
                }

                _rxWatchdog?.Change(_options.ReceiveWatchdog!.Value, Timeout.InfiniteTimeSpan);
                var link = FramedLinkOf(socket);
                if (link is not null &&
                    link.TryReadMessage(destination.Span, _options.MaxMessageSize, out var taken, out var takenType))
                {
                    // A whole frame that was already buffered, taken without a pass through ClientWebSocket.
                    if (TryFinishReaderRead(socket, destination, retain: false, new MessageRead(takenType, taken, null, ReceiveOutcome.None), out var fromBuffer))
                    {
                        return new ValueTask<LifelineReceiveResult>(fromBuffer);
                    }

                    continue;
                }

                ValueTask<ValueWebSocketReceiveResult> pending;
                try
                {
                    pending = socket.ReceiveAsync(destination, CancellationToken.None);
                }
#pragma warning disable CA1031 // Every failure of a read ends the connection; the loop records it.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    ReportOutcome(socket, ReceiveOutcome.Failed, e);
                    continue;
                }

                if (!pending.IsCompletedSuccessfully)
                {
                    leave = false;
                    return ContinueReaderReadAsync(socket, destination, pending);
                }

                var first = pending.Result;
                if (!first.EndOfMessage || first.MessageType == WebSocketMessageType.Close || first.Count > _options.MaxMessageSize)
                {
                    leave = false;
                    return ContinueReaderReadAsync(socket, destination, pending: new ValueTask<ValueWebSocketReceiveResult>(first));
                }

                link?.MarkMessageEnded();

                if (TryFinishReaderRead(socket, destination, retain: false, new MessageRead(first.MessageType, first.Count, null, ReceiveOutcome.None), out var result))
                {
                    return new ValueTask<LifelineReceiveResult>(result);
                }
            }
        }
        finally
        {
            if (leave)
            {
                _readerGate.Exit();
            }
        }
    }

    /// <summary>For <see cref="Messages"/>: true once a message is buffered (read one if needed), false when closed and empty.</summary>
    internal async ValueTask<bool> WaitForMessageAsync(CancellationToken cancellationToken)
    {
        lock (RxLock)
        {
            if (_incoming.Count > 0)
            {
                return true;
            }
        }

        var result = await ReceiveCoreAsync(default, retain: true, cancellationToken).ConfigureAwait(false);
        return result.Status != LifelineReceiveStatus.Closed;
    }

    /// <summary>
    /// The per-message path's way to the socket, without the hand-off lock: the socket a reader kept from its last read
    /// (the caller holds the gate, so it is this reader's), or one exchange of the owner from None to Reader. Null when
    /// the socket is not free, or when a message read ahead, a message handed over and given up, or the end of the
    /// stream is waiting: the full path deals with those.
    /// </summary>
    /// <remarks>
    /// Safe without the lock because only a reader holding the gate ever sets Reader, the loop takes Reader back only
    /// while it holds the gate itself, and everyone else who takes the socket from None does so with an exchange too;
    /// whoever leaves the socket free after queueing a message (or leaving a peeked one) writes that first, with a fence.
    /// The socket is read before the owner (the end of a connection clears the owner before a new socket is set), so a
    /// reader that takes it just as the connection is replaced reads only the old socket, which fails, and then gives
    /// the owner back (<see cref="ReleaseReader"/>).
    /// </remarks>
    private ClientWebSocket? TryTakeSocketForDirectRead()
    {
        var socket = Volatile.Read(ref _rxSocket);
        if (socket is null)
        {
            return null;
        }

        // A plain read: entering the gate was a full fence, and only gate holders set Reader. The loop clears it either
        // holding the gate itself (so not now) or as the connection ends (the socket read above then fails, see the remarks).
        if (_rxOwner != ReceiveOwner.Reader &&
            Interlocked.CompareExchange(ref _rxOwner, ReceiveOwner.Reader, ReceiveOwner.None) != ReceiveOwner.None)
        {
            return null;
        }

        if (_incoming.Count == 0 && !_incoming.IsCompleted && !_rxPeeked)
        {
            return socket;
        }

        ReleaseReader();
        return null;
    }

    /// <summary>ClientWebSocket just handed out the end of a message read from <paramref name="socket"/>: frames buffered after it may be taken directly.</summary>
    private void MarkMessageEnded(ClientWebSocket socket) => FramedLinkOf(socket)?.MarkMessageEnded();

    /// <summary>
    /// The stream under <paramref name="socket"/> when it reads frame by frame (see <see cref="LinkStream.TryReadMessage"/>),
    /// or null. Found through the keep-alive monitor, which holds the socket and its stream together: no field per client.
    /// </summary>
    private LinkStream? FramedLinkOf(ClientWebSocket socket) =>
        Volatile.Read(ref _keepAlive) is { } monitor && monitor.Watches(socket) && monitor.Stream.Framed ? monitor.Stream : null;

    /// <summary>Gives the socket back if this reader still holds it (only the reader holding the gate ever sets Reader).</summary>
    private void ReleaseReader() => Interlocked.CompareExchange(ref _rxOwner, ReceiveOwner.None, ReceiveOwner.Reader);

    /// <summary>
    /// The per-message path's read did not finish at once (or needs more than one read): finishes it asynchronously,
    /// then goes on like any reader. Holds the reader gate and leaves it at the end.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // per message: no box allocated when it goes asynchronous
    private async ValueTask<LifelineReceiveResult> ContinueReaderReadAsync(ClientWebSocket socket, Memory<byte> destination, ValueTask<ValueWebSocketReceiveResult> pending)
    {
        try
        {
            MessageRead read;
            try
            {
                var first = await pending.ConfigureAwait(false);
                read = first.MessageType == WebSocketMessageType.Close
                    ? new MessageRead(first.MessageType, 0, null, ReceiveOutcome.CloseFrame)
                    : await ReadMessageAsync(socket, destination, first.Count, first.MessageType, first.EndOfMessage, CancellationToken.None).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Every failure of a read ends the connection; the loop records it.
            catch (Exception e)
#pragma warning restore CA1031
            {
                ReportOutcome(socket, ReceiveOutcome.Failed, e);
                return await ReceiveHoldingGateAsync(destination, retain: false, CancellationToken.None).ConfigureAwait(false);
            }

            if (read.Outcome != ReceiveOutcome.None)
            {
                ReportOutcome(socket, read.Outcome, null);
            }
            else
            {
                MarkMessageEnded(socket);
                if (TryFinishReaderRead(socket, destination, retain: false, read, out var result))
                {
                    return result;
                }
            }

            return await ReceiveHoldingGateAsync(destination, retain: false, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _readerGate.Exit();
        }
    }

    /// <summary>The per-message path could not be taken: goes on like any reader, then leaves the gate it holds.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // per message: no box allocated when it goes asynchronous
    private async ValueTask<LifelineReceiveResult> ReceiveThenLeaveGateAsync(Memory<byte> destination)
    {
        try
        {
            return await ReceiveHoldingGateAsync(destination, retain: false, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _readerGate.Exit();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // per message: no box allocated when it goes asynchronous
    private async ValueTask<LifelineReceiveResult> ReceiveCoreAsync(Memory<byte> destination, bool retain, CancellationToken cancellationToken)
    {
        await _readerGate.EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await ReceiveHoldingGateAsync(destination, retain, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _readerGate.Exit();
        }
    }

    /// <summary>Every way of reading, for the reader that holds the gate (the caller leaves it).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // per message: no box allocated when it goes asynchronous
    private async ValueTask<LifelineReceiveResult> ReceiveHoldingGateAsync(Memory<byte> destination, bool retain, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                // A hand-off may have come just before the cancellation: give it back, or nobody would read the socket.
                GiveBackHandOff(null);
                cancellationToken.ThrowIfCancellationRequested();
            }

            ClientWebSocket? socket = null;
            Task? wait = null;
            bool peeked;
            WebSocketMessageType peekType;
            bool peekEnded;
            lock (RxLock)
            {
                if (retain && _incoming.Count > 0)
                {
                    return new LifelineReceiveResult(LifelineReceiveStatus.DestinationTooSmall, 0, WebSocketMessageType.Binary);
                }

                if (!retain && _incoming.TryTake(destination.Span, out var buffered))
                {
                    return buffered;
                }

                if (_incoming.IsCompleted)
                {
                    return new LifelineReceiveResult(LifelineReceiveStatus.Closed, 0, WebSocketMessageType.Binary);
                }

                peeked = _rxPeeked;
                peekType = _rxPeekType;
                peekEnded = _rxPeekEnded;
                // Reader: the socket a reader kept after its last read; this reader holds the gate, so it is its turn.
                if (_rxSocket is not null && (_rxOwner is ReceiveOwner.HandedToReader or ReceiveOwner.Reader || (_rxOwner == ReceiveOwner.None && !_rxPeeked)))
                {
                    _rxOwner = ReceiveOwner.Reader;
                    _rxPeeked = false;
                    socket = _rxSocket;
                }
                else
                {
                    _rxWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _rxWaiter.Task;
                }
            }

            if (wait is not null)
            {
                WakeLoop();
                await WaitForHandOffAsync(wait, cancellationToken).ConfigureAwait(false);
                AfterHandOffWaitForTest?.Invoke();
                continue;
            }

            if (!peeked && cancellationToken.CanBeCanceled)
            {
                // A cancellable reader never leaves a read pending on its memory: wait for data with a zero-byte
                // read, and if none is there yet let the loop hold that wait while the reader waits on its token.
                ValueTask<ValueWebSocketReceiveResult> peek;
                try
                {
                    peek = socket!.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
                }
#pragma warning disable CA1031 // As below: a socket aborted under the loop (keep-alive, stop) throws here at once; the loop records it.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    ReportOutcome(socket!, ReceiveOutcome.Failed, e);
                    continue;
                }

                if (!peek.IsCompleted)
                {
                    lock (RxLock)
                    {
                        if (_rxSocket == socket)
                        {
                            _rxOwner = ReceiveOwner.Loop;
                            _rxPendingPeek = peek.AsTask();
                        }

                        _rxWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        wait = _rxWaiter.Task;
                    }

                    WakeLoop();
                    await WaitForHandOffAsync(wait, cancellationToken).ConfigureAwait(false);
                    AfterHandOffWaitForTest?.Invoke();
                    continue;
                }

                ValueWebSocketReceiveResult first;
                try
                {
                    first = peek.GetAwaiter().GetResult();
                }
#pragma warning disable CA1031 // Every failure of a read ends the connection; the loop records it.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    ReportOutcome(socket, ReceiveOutcome.Failed, e);
                    continue;
                }

                if (first.MessageType == WebSocketMessageType.Close)
                {
                    ReportOutcome(socket, ReceiveOutcome.CloseFrame, null);
                    continue;
                }

                (peeked, peekType, peekEnded) = (true, first.MessageType, first.EndOfMessage);
            }

            _rxWatchdog?.Change(_options.ReceiveWatchdog!.Value, Timeout.InfiniteTimeSpan);
            MessageRead read;
            try
            {
                read = await ReadMessageAsync(socket!, retain ? default : destination, 0, peekType, peeked && peekEnded, CancellationToken.None).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Every failure of a read ends the connection; the loop records it.
            catch (Exception e)
#pragma warning restore CA1031
            {
                ReportOutcome(socket!, ReceiveOutcome.Failed, e);
                continue;
            }

            if (read.Outcome != ReceiveOutcome.None)
            {
                ReportOutcome(socket!, read.Outcome, null);
                continue;
            }

            if (TryFinishReaderRead(socket!, destination, retain, read, out var result))
            {
                return result;
            }
        }
    }

    /// <summary>
    /// A reader that owned the socket read a whole message: applies the session framing and counts it. A message for the
    /// caller's memory leaves the socket with the readers (see <see cref="ReceiveOwner.Reader"/>); one that did not fit
    /// gives it back. False when there is nothing for the application (an Ack, a duplicate, or a frame the loop acts
    /// on): read again.
    /// </summary>
    private bool TryFinishReaderRead(ClientWebSocket socket, Memory<byte> destination, bool retain, MessageRead read, out LifelineReceiveResult result)
    {
        result = default;
        if (_options.Session is not null)
        {
            // Memory<T>.Span checks what backs the memory on every call: take it once per message.
            var frame = read.Pooled is null ? destination.Span[..read.Length] : read.Pooled.AsSpan(0, read.Length);
            var verdict = TakeSessionFrame(socket, read.Type, frame, out var payloadLength, out var payloadType);
            if (verdict != SessionFrameVerdict.Deliver)
            {
                OnReaderFrameNotDelivered(socket, read, frame, verdict);
                return false;
            }

            if (read.Pooled is { } spilled && !retain && payloadLength <= destination.Length)
            {
                // The frame did not fit but its payload does.
                spilled.AsSpan(read.Length - payloadLength, payloadLength).CopyTo(destination.Span);
                ArrayPool<byte>.Shared.Return(spilled);
                read = read with { Pooled = null };
            }
            else
            {
                PayloadMove.ToFront(frame, read.Length - payloadLength, payloadLength);
            }

            read = read with { Length = payloadLength, Type = payloadType };
        }

        _receivedByReaders++; // only the reader holding the gate counts here: no interlocked operation per message
        _rxWatchdog?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan); // the application is busy, not the link dead
        if (read.Pooled is null && !retain)
        {
            // The reader keeps the socket for its next read (see ReceiveOwner.Reader).
            result = new LifelineReceiveResult(LifelineReceiveStatus.Message, read.Length, read.Type);
            return true;
        }

        lock (RxLock)
        {
            ReleaseReader();
            _incoming.PutFirst(read.Pooled ?? ArrayPool<byte>.Shared.Rent(1), read.Length, read.Type);
        }

        result = new LifelineReceiveResult(LifelineReceiveStatus.DestinationTooSmall, read.Length, read.Type);
        return true;
    }

    /// <summary>
    /// A reader read an Ack, a duplicate, or a frame the loop acts on (it may end the connection): no message for the
    /// reader. Kept out of <see cref="TryFinishReaderRead"/>, which runs once per message, to keep its stack frame small.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void OnReaderFrameNotDelivered(ClientWebSocket socket, MessageRead read, ReadOnlySpan<byte> frame, SessionFrameVerdict verdict)
    {
        var forLoop = verdict == SessionFrameVerdict.ForLoop ? read.Pooled ?? CopyToPooled(frame) : null;
        if (forLoop is null && read.Pooled is { } pooled)
        {
            ArrayPool<byte>.Shared.Return(pooled);
        }

        lock (RxLock)
        {
            if (_rxOwner == ReceiveOwner.Reader)
            {
                // Only this reader sets Reader; a frame for a connection already over is dropped.
                _rxOwner = forLoop is null || _rxSocket != socket ? ReceiveOwner.None : ReceiveOwner.Loop;
                if (_rxOwner == ReceiveOwner.Loop)
                {
                    (_rxLoopFrame, _rxLoopFrameLength, _rxLoopFrameType) = (forLoop, read.Length, read.Type);
                    forLoop = null;
                }
            }
        }

        if (forLoop is not null)
        {
            ArrayPool<byte>.Shared.Return(forLoop); // that connection is already over
        }

        WakeLoop();
    }

    /// <summary>Waits for the loop to hand over the socket or a message; on cancellation gives back anything handed over meanwhile.</summary>
    private async ValueTask WaitForHandOffAsync(Task wait, CancellationToken cancellationToken)
    {
        try
        {
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            GiveBackHandOff(wait);
            throw;
        }
    }

    /// <summary>A cancelled reader gives back anything handed over to it; the loop finishes the message it peeked.</summary>
    private void GiveBackHandOff(Task? wait)
    {
        lock (RxLock)
        {
            if (wait is not null && _rxWaiter?.Task == wait)
            {
                _rxWaiter = null;
            }

            if (_rxOwner == ReceiveOwner.HandedToReader)
            {
                Interlocked.Exchange(ref _rxOwner, ReceiveOwner.None); // after _rxPeeked: see TryTakeSocketForDirectRead
            }
        }

        WakeLoop();
    }

    /// <summary>Tests: runs after a reader's wait for a hand-off ended, before it goes on.</summary>
    internal Action? AfterHandOffWaitForTest { get; set; }

    /// <summary>Tests: whether a reader waits for the loop to hand it the socket or a message.</summary>
    internal bool HasReaderWaitingForHandOff
    {
        get
        {
            lock (RxLock)
            {
                return _rxWaiter is { Task.IsCompleted: false };
            }
        }
    }

    /// <summary>A reader's read ended the connection (Close frame, too big, failure): the loop records it and ends the connection.</summary>
    private void ReportOutcome(ClientWebSocket socket, ReceiveOutcome outcome, Exception? error)
    {
        lock (RxLock)
        {
            if (_rxSocket != socket)
            {
                ReleaseReader(); // that connection is already over
                return;
            }

            _rxOwner = ReceiveOwner.Loop;
            _rxOutcome = outcome;
            _rxOutcomeError = error;
        }

        WakeLoop();
    }

    private void WakeLoop()
    {
        if (_loopWake.CurrentCount == 0)
        {
            try
            {
                _loopWake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already woken.
            }
        }
    }

    private void WakeReaderLocked()
    {
        var waiter = _rxWaiter;
        _rxWaiter = null;
        waiter?.TrySetResult();
    }

    /// <summary>Completes the message stream (the client closed): readers get what is buffered, then Closed.</summary>
    private void CompleteIncoming()
    {
        lock (RxLock)
        {
            _incoming.Complete();
            WakeReaderLocked();
        }
    }

    private readonly record struct MessageRead(WebSocketMessageType Type, int Length, byte[]? Pooled, ReceiveOutcome Outcome);

    /// <summary>
    /// Reads one whole message into <paramref name="destination"/>, continuing in pooled memory (the caller then owns
    /// <see cref="MessageRead.Pooled"/>) when it does not fit. The message may have begun: its first
    /// <paramref name="written"/> bytes are in <paramref name="destination"/> (0 after a zero-byte read consumed the
    /// first frame's header), and <paramref name="ended"/> says whether that was all of it.
    /// </summary>
    private async ValueTask<MessageRead> ReadMessageAsync(ClientWebSocket socket, Memory<byte> destination, int written, WebSocketMessageType type, bool ended, CancellationToken cancellationToken)
    {
        if (written > _options.MaxMessageSize)
        {
            return new MessageRead(type, 0, null, ReceiveOutcome.TooBig);
        }

        byte[]? pooled = null;
        try
        {
            while (!ended)
            {
                var target = pooled is null ? destination[written..] : pooled.AsMemory(written);
                if (target.IsEmpty)
                {
                    // In long: past 1 GiB, written * 2 overflows (MaxMessageSize may be int.MaxValue).
                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Max(PooledStart, Math.Min(written * 2L, Math.Min(_options.MaxMessageSize + 1L, Array.MaxLength))));
                    (pooled is null ? destination.Span[..written] : pooled.AsSpan(0, written)).CopyTo(bigger);
                    if (pooled is not null)
                    {
                        ArrayPool<byte>.Shared.Return(pooled);
                    }

                    pooled = bigger;
                    continue;
                }

                var result = await socket.ReceiveAsync(target, cancellationToken).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    Return(ref pooled);
                    return new MessageRead(type, 0, null, ReceiveOutcome.CloseFrame);
                }

                type = result.MessageType;
                written += result.Count;
                ended = result.EndOfMessage;
                if (written > _options.MaxMessageSize)
                {
                    Return(ref pooled);
                    return new MessageRead(type, 0, null, ReceiveOutcome.TooBig);
                }
            }

            return new MessageRead(type, written, pooled, ReceiveOutcome.None);
        }
        catch
        {
            Return(ref pooled);
            throw;
        }

        static void Return(ref byte[]? array)
        {
            if (array is not null)
            {
                ArrayPool<byte>.Shared.Return(array);
                array = null;
            }
        }
    }

    /// <summary>
    /// The connection's receive loop. It owns the socket's receive side whenever no reader has it (and takes it back from
    /// readers that keep it but pause, see <see cref="ReceiveOwner.Reader"/>): it waits for data with
    /// zero-byte reads (no buffer held while idle; Pongs and Close frames are processed meanwhile), hands the socket to a
    /// reader that is waiting when data arrives, reads ahead into pooled memory when the application has not been reading
    /// for <see cref="ReadAheadDelay"/> (bounded by the receive capacity; in session mode, while sent messages await
    /// acks, by that plus the server's replay bounds), and turns every way the connection ends into
    /// its close record.
    /// </summary>
    // Outside the loop's method, so that the closure over the socket exists only when there is a watchdog.
    private ITimer CreateWatchdog(ClientWebSocket socket, TimeSpan period) =>
        _time.CreateTimer(_ => OnWatchdog(socket), null, period, Timeout.InfiniteTimeSpan);

    private async Task<CloseRecord> ReceiveLoopAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        using var watchdog = _options.ReceiveWatchdog is { } period ? CreateWatchdog(socket, period) : null;
        lock (RxLock)
        {
            _rxSocket = socket;
            _rxPeeked = false; // the owner is None (the last connection's end set it), or a reader on the per-message path took it
            _rxPendingPeek = null;
            _rxOutcome = ReceiveOutcome.None;
            _rxOutcomeError = null;
            _rxReaderIdleAt = _time.GetTimestamp(); // a reader that starts at once reads the first frames itself
            _rxWatchdog = watchdog;
            WakeReaderLocked();
        }

        try
        {
            while (true)
            {
                var outcome = ReceiveOutcome.None;
                Exception? error = null;
                Task<ValueWebSocketReceiveResult>? pending = null;
                var read = false;
                var continuing = false;
                var peekType = WebSocketMessageType.Binary;
                var peekEnded = false;
                var park = Timeout.InfiniteTimeSpan;
                var pauseWatchdog = false;
                var session = Volatile.Read(ref _session);
                byte[]? loopFrame = null;
                var loopFrameLength = 0;
                var loopFrameType = WebSocketMessageType.Binary;
                var reclaim = false;
                lock (RxLock)
                {
                    if (Volatile.Read(ref _receivedByReaders) != _rxReadsSeen)
                    {
                        // Readers do not look at the clock per message: idle time counts from when the loop last saw a read.
                        _rxReadsSeen = Volatile.Read(ref _receivedByReaders);
                        _rxReaderIdleAt = _time.GetTimestamp();
                    }

                    var idleFor = _time.GetElapsedTime(_rxReaderIdleAt);
                    if (_rxOutcome != ReceiveOutcome.None)
                    {
                        (outcome, error) = (_rxOutcome, _rxOutcomeError);
                    }
                    else if (_rxOwner == ReceiveOwner.Loop && _rxLoopFrame is not null)
                    {
                        (loopFrame, loopFrameLength, loopFrameType) = (_rxLoopFrame, _rxLoopFrameLength, _rxLoopFrameType);
                        _rxLoopFrame = null;
                    }
                    else if (_rxOwner == ReceiveOwner.Loop && _rxPendingPeek is not null)
                    {
                        pending = _rxPendingPeek;
                        _rxPendingPeek = null;
                        read = true;
                    }
                    else if (_rxOwner == ReceiveOwner.None)
                    {
                        pauseWatchdog = true;
                        if (_rxPeeked)
                        {
                            // A reader it was handed to gave up: finish the message.
                            (read, continuing, peekType, peekEnded) = (true, true, _rxPeekType, _rxPeekEnded);
                        }
                        else if (!_incoming.HasRoom && !_stopRequested.IsCancellationRequested && !(session is not null && session.Replay.Count > 0
                                     && _incoming.HasOverflowRoom(session.PeerReplayMessages, SaturatingAdd(session.PeerReplayBytes, _options.MaxMessageSize))))
                        {
                            // Backpressure: the application frees room. Nothing wakes the loop when it does (a reader
                            // then reads the socket itself and may keep it), so look again later. Session mode: while
                            // sends await the server's acks, read on (up to the overflow room): those acks travel behind
                            // the Data held up here, and an application that replies to each message (or waits for an
                            // ack) would wait for them, never reading to make room (a deadlock). Stopping: read on too,
                            // past the bound, to reach the server's answer to our Close frame (what comes before it is
                            // what the server sent before it read our Close, and the stop's deadline bounds it).
                            park = ReadAheadDelay;
                        }
                        else if (_rxWaiter is not null || _stopRequested.IsCancellationRequested || idleFor >= ReadAheadDelay || session?.Replay.Count > 0)
                        {
                            read = true;
                        }
                        else
                        {
                            // Session mode: while sent messages await the server's acks the loop reads ahead to apply
                            // them (see the condition above); a sender that starts waiting for room wakes it.
                            park = ReadAheadDelay - idleFor;
                        }

                        // A reader on the per-message path takes the socket without this lock, so take it with an exchange.
                        if (read && Interlocked.CompareExchange(ref _rxOwner, ReceiveOwner.Loop, ReceiveOwner.None) != ReceiveOwner.None)
                        {
                            (read, continuing, pauseWatchdog, park) = (false, false, false, ReadAheadDelay); // a reader just took it
                        }
                        else if (continuing)
                        {
                            _rxPeeked = false;
                        }
                    }
                    else if (_rxOwner == ReceiveOwner.Reader &&
                             (_stopRequested.IsCancellationRequested || idleFor >= ReadAheadDelay || session?.Replay.Count > 0))
                    {
                        reclaim = true; // the loop has a reason to read: take back the socket a reader kept, if no reader is reading
                    }
                    else
                    {
                        park = ReadAheadDelay; // a reader has the socket; look again later
                    }
                }

                if (reclaim)
                {
                    // A reader holds the gate while it reads: holding it, the loop knows that none is, so the socket
                    // the last one kept is free. A reader that comes meanwhile waits its turn at the gate.
                    if (_readerGate.TryEnter())
                    {
                        lock (RxLock)
                        {
                            if (_rxOwner == ReceiveOwner.Reader)
                            {
                                _rxOwner = ReceiveOwner.None;
                            }
                        }

                        _readerGate.Exit();
                        continue; // decide again, with the socket free
                    }

                    park = ReadAheadDelay; // a reader is reading; look again later
                }

                switch (outcome)
                {
                    case ReceiveOutcome.CloseFrame:
                        return await OnCloseFrameAsync(socket).ConfigureAwait(false);
                    case ReceiveOutcome.TooBig:
                        return await CloseTooBigAsync(socket).ConfigureAwait(false);
                    case ReceiveOutcome.Failed:
                        return ClassifyReceiveFailure(error!, socket);
                }

                if (loopFrame is not null)
                {
                    if (await OnSessionFrameInLoopAsync(socket, session, loopFrame, loopFrameLength, loopFrameType).ConfigureAwait(false) is { } ended)
                    {
                        return ended;
                    }

                    continue;
                }

                if (!read)
                {
                    if (pauseWatchdog)
                    {
                        watchdog?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan); // a slow reader is not a dead link
                    }

                    // Only a wait without end needs the token; the stop's abort wakes the others (see CancelStepAsync).
                    await _loopWake.WaitAsync(park, park == Timeout.InfiniteTimeSpan ? cancellationToken : CancellationToken.None).ConfigureAwait(false);
                    cancellationToken.ThrowIfCancellationRequested(); // a finite wait ends a cancelled connection too (the abort wakes it)
                    continue;
                }

                watchdog?.Change(_options.ReceiveWatchdog!.Value, Timeout.InfiniteTimeSpan);
                if (!continuing)
                {
                    // Socket reads take no token, as the readers' do: a registration stays on the connection's token source
                    // for its whole life, and the stop's abort aborts the socket anyway (see CancelStepAsync).
                    var peek = pending is not null
                        ? await pending.ConfigureAwait(false)
                        : await socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).ConfigureAwait(false);
                    if (peek.MessageType == WebSocketMessageType.Close)
                    {
                        return await OnCloseFrameAsync(socket).ConfigureAwait(false);
                    }

                    (peekType, peekEnded) = (peek.MessageType, peek.EndOfMessage);
                    lock (RxLock)
                    {
                        if (_rxWaiter is not null)
                        {
                            // A reader is waiting: it reads the message itself, into its own memory.
                            (_rxOwner, _rxPeeked, _rxPeekType, _rxPeekEnded) = (ReceiveOwner.HandedToReader, true, peekType, peekEnded);
                            WakeReaderLocked();
                            continue;
                        }
                    }
                }

                var message = await ReadMessageAsync(socket, default, 0, peekType, peekEnded, CancellationToken.None).ConfigureAwait(false);
                switch (message.Outcome)
                {
                    case ReceiveOutcome.CloseFrame:
                        return await OnCloseFrameAsync(socket).ConfigureAwait(false);
                    case ReceiveOutcome.TooBig:
                        return await CloseTooBigAsync(socket).ConfigureAwait(false);
                }

                var array = message.Pooled ?? ArrayPool<byte>.Shared.Rent(1);
                var length = message.Length;
                var type = message.Type;
                if (_options.Session is not null)
                {
                    var verdict = TakeSessionFrame(socket, type, array.AsSpan(0, length), out var payloadLength, out var payloadType, hold: IsPastReceiveBounds());
                    if (verdict == SessionFrameVerdict.ForLoop)
                    {
                        if (await OnSessionFrameInLoopAsync(socket, session, array, length, type).ConfigureAwait(false) is { } ended)
                        {
                            return ended;
                        }

                        continue;
                    }

                    if (verdict == SessionFrameVerdict.Skip)
                    {
                        ArrayPool<byte>.Shared.Return(array);
                        lock (RxLock)
                        {
                            _rxOwner = ReceiveOwner.None;
                        }

                        continue;
                    }

                    PayloadMove.ToFront(array, length - payloadLength, payloadLength); // the payload, in place of the frame
                    (length, type) = (payloadLength, payloadType);
                }

                Interlocked.Increment(ref _received);
                lock (RxLock)
                {
                    _incoming.Enqueue(array, length, type);
                    Interlocked.Exchange(ref _rxOwner, ReceiveOwner.None); // after the message: see TryTakeSocketForDirectRead
                    WakeReaderLocked();
                }
            }
        }
#pragma warning disable CA1031 // Every way a receive can fail is a way the connection ended; it is recorded, not thrown.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ClassifyReceiveFailure(e, socket);
        }
        finally
        {
            byte[]? leftover;
            lock (RxLock)
            {
                _rxSocket = null;
                _rxOwner = ReceiveOwner.None;
                _rxPeeked = false;
                _rxPendingPeek = null;
                _rxWatchdog = null;
                leftover = _rxLoopFrame;
                _rxLoopFrame = null;
            }

            if (leftover is not null)
            {
                ArrayPool<byte>.Shared.Return(leftover);
            }
        }
    }

    /// <summary>What a reader (or the loop reading ahead) does with a session frame it read.</summary>
    private enum SessionFrameVerdict
    {
        /// <summary>A Data frame, next in order and accepted: its payload goes to the application.</summary>
        Deliver,

        /// <summary>Nothing for the application: an Ack (applied) or a duplicate (dropped).</summary>
        Skip,

        /// <summary>The loop acts on it (SessionLost, malformed, gap, a text message, an ack beyond sent): it may end the connection.</summary>
        ForLoop,
    }

    /// <summary>
    /// Session mode: decodes a frame in place and applies what needs no I/O: the ack it carries, and for Data the inbound
    /// cursor (a message counts as delivered when handed to the application, which this is). Anything that may end the
    /// connection is left unapplied for the loop (<see cref="OnSessionMessageAsync"/> decides it again from scratch).
    /// </summary>
    private SessionFrameVerdict TakeSessionFrame(ClientWebSocket socket, WebSocketMessageType type, ReadOnlySpan<byte> frame, out int payloadLength, out WebSocketMessageType payloadType,
        bool hold = false)
    {
        payloadLength = 0;
        payloadType = WebSocketMessageType.Binary;
        var session = Volatile.Read(ref _session);
        if (type == WebSocketMessageType.Text || session is null || session.IsEnded)
        {
            return SessionFrameVerdict.ForLoop;
        }

        if (SessionFrameReader.TryReadData(frame, _options.MaxMessageSize, out var sequence, out var ack, out var headerLength, out var isText))
        {
            if (ack > session.Replay.LastAcknowledgedHint && session.Replay.Acknowledge(ack).Status == ReplayAckStatus.BeyondSent)
            {
                return SessionFrameVerdict.ForLoop;
            }

            switch (session.Inbound.Accept(sequence, frame.Length - headerLength, hold, out AckTrigger trigger))
            {
                case InboundDecision.Deliver:
                    payloadLength = frame.Length - headerLength;
                    payloadType = isText ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
                    if (trigger == AckTrigger.DueNow)
                    {
                        SendDueAck(socket, session);
                    }
                    else if (trigger == AckTrigger.WakeLoop)
                    {
                        SignalAck();
                    }

                    return SessionFrameVerdict.Deliver;
                case InboundDecision.Duplicate or InboundDecision.Ended: // Ended: the client ended the session meanwhile (5.7)
                    return SessionFrameVerdict.Skip;
                default:
                    return SessionFrameVerdict.ForLoop; // a gap changes nothing: the loop finds it again and closes
            }
        }

        return TakeOtherSessionFrame(session, frame);
    }

    /// <summary>
    /// Not a well-formed Data frame: an Ack is applied here, anything else (or anything malformed) goes to the loop. Kept
    /// out of <see cref="TakeSessionFrame"/>: the general decoder's header struct, inlined there, made the per-message
    /// method's stack frame several hundred bytes larger, all zeroed on every call.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private SessionFrameVerdict TakeOtherSessionFrame(ClientSession session, ReadOnlySpan<byte> frame)
    {
        if (SessionFrameReader.TryRead(frame, _options.MaxMessageSize, out var parsed) != SessionFrameError.None ||
            parsed.Header.Type != SessionFrameType.Ack)
        {
            return SessionFrameVerdict.ForLoop;
        }

        return session.Replay.Acknowledge(parsed.Header.Ack).Status == ReplayAckStatus.BeyondSent ? SessionFrameVerdict.ForLoop : SessionFrameVerdict.Skip;
    }

    /// <summary>Session mode: the loop acts on a frame (returns its pooled copy); the close record when the connection must end.</summary>
    private async Task<CloseRecord?> OnSessionFrameInLoopAsync(ClientWebSocket socket, ClientSession? session, byte[] frame, int length, WebSocketMessageType type)
    {
        CloseRecord? ended;
        try
        {
            // The loop runs only after a handshake, so no session here means the client ended it on this connection (the
            // queue's writer, for a full or expired replay buffer) and is telling the server, then closing the connection:
            // what the server sent meanwhile is ignored (5.7), not a protocol error and not delivered.
            session ??= Volatile.Read(ref _session);
            ended = session is null || session.IsEnded
                ? null
                : await OnSessionMessageAsync(socket, session, type, frame.AsMemory(0, length)).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }

        if (ended is null)
        {
            lock (RxLock)
            {
                Interlocked.Exchange(ref _rxOwner, ReceiveOwner.None); // after any message it delivered: see TryTakeSocketForDirectRead
                WakeReaderLocked();
            }
        }

        return ended;
    }

    /// <summary>Session mode: the loop reads past the receive bounds (while sends await acks); what it reads there is held unacknowledged.</summary>
    private bool IsPastReceiveBounds()
    {
        lock (RxLock)
        {
            return !_incoming.HasRoom;
        }
    }

    private static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b; // b >= 0

    private static byte[] CopyToPooled(ReadOnlySpan<byte> data)
    {
        var array = ArrayPool<byte>.Shared.Rent(Math.Max(1, data.Length));
        data.CopyTo(array);
        return array;
    }

    /// <summary>Session mode: hands a delivered payload to the application (a pooled copy, read by <see cref="ReceiveAsync"/> or <see cref="Messages"/>).</summary>
    private void DeliverSessionMessage(ReadOnlySpan<byte> payload, bool isText)
    {
        Interlocked.Increment(ref _received);
        var array = ArrayPool<byte>.Shared.Rent(Math.Max(1, payload.Length));
        payload.CopyTo(array);
        lock (RxLock)
        {
            _incoming.Enqueue(array, payload.Length, isText ? WebSocketMessageType.Text : WebSocketMessageType.Binary);
            WakeReaderLocked();
        }
    }

    private void OnWatchdog(ClientWebSocket socket)
    {
        Volatile.Write(ref _watchdogFired, 1);
        socket.Abort();
    }

    private async Task<CloseRecord> OnCloseFrameAsync(ClientWebSocket socket)
    {
        var code = socket.CloseStatus is { } status ? CloseCode.FromWebSocketCloseStatus(status) : CloseCode.NoStatusReceived;
        var reason = string.IsNullOrEmpty(socket.CloseStatusDescription) ? null : socket.CloseStatusDescription;
        if (socket.State == WebSocketState.CloseReceived)
        {
            // Complete the closing handshake: echo the code when it may be sent, 1000 otherwise.
            var echo = code.CanBeSent ? code : CloseCode.NormalClosure;
            try
            {
                using var timeout = new CancellationTokenSource(_options.CloseTimeout, _time);
                await socket.CloseOutputAsync(echo.ToWebSocketCloseStatus(), null, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The server may already be gone; the close is recorded either way.
            }
        }

        if (!StopRequested && code == CloseCode.NormalClosure && ReferenceEquals(Interlocked.CompareExchange(ref _closedForNewSession, null, socket), socket))
        {
            // The server's answer to the Close the client sent after ending its session (CloseForNewSessionAsync): reconnect
            // for a new session, as when the server ends one. A close of the server's own that crossed it (1012 for a
            // drain, 1008) keeps its code and the reaction it asks for.
            return new CloseRecord
            {
                Code = CloseCode.AbnormalClosure,
                Reason = reason,
                Initiator = CloseInitiator.Client,
                CloseFrameReceived = true,
                Cause = CloseCause.SessionInterrupted,
                Description = "the client ended the session (its replay buffer gave up) and closed the connection; starting a new one",
            };
        }

        return StopRequested
            ? new CloseRecord { Code = code, Reason = reason, Initiator = CloseInitiator.Client, CloseFrameReceived = true, Cause = CloseCause.StoppedByApplication, Description = "closed by the application" }
            : new CloseRecord { Code = code, Reason = reason, Initiator = CloseInitiator.Server, CloseFrameReceived = true, Cause = CloseCause.ServerClosed, Description = "the server closed the connection" };
    }

    private async Task<CloseRecord> CloseTooBigAsync(ClientWebSocket socket)
    {
        Log.MessageTooBig(_logger, _options.MaxMessageSize);
        var reason = string.Create(CultureInfo.InvariantCulture, $"message larger than {_options.MaxMessageSize} bytes");
        try
        {
            using var timeout = new CancellationTokenSource(_options.CloseTimeout, _time);
            await socket.CloseAsync(CloseCode.MessageTooBig.ToWebSocketCloseStatus(), reason, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            socket.Abort();
        }

        return new CloseRecord { Code = CloseCode.MessageTooBig, Reason = reason, Initiator = CloseInitiator.Client, Cause = CloseCause.MessageTooBig, Description = $"a received message exceeded MaxMessageSize ({_options.MaxMessageSize} bytes)" };
    }

    private CloseRecord ClassifyReceiveFailure(Exception exception, ClientWebSocket socket)
    {
        if (Volatile.Read(ref _watchdogFired) != 0)
        {
            return Ended(CloseCode.AbnormalClosure, CloseInitiator.Transport, exception, CloseCause.ReceiveWatchdog,
                $"receive watchdog: no message within {_options.ReceiveWatchdog!.Value.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        }

        if (StopRequested)
        {
            return Ended(CloseCode.AbnormalClosure, CloseInitiator.Client, exception, CloseCause.CloseNotAnswered,
                "stopped by the application; the server did not answer the Close frame in time");
        }

        if (Volatile.Read(ref _keepAlive) is { Expired: true })
        {
            Log.KeepAliveExpired(_logger, _options.KeepAliveTimeout);
            return Ended(CloseCode.AbnormalClosure, CloseInitiator.Transport, exception, CloseCause.KeepAliveTimeout,
                $"keep-alive timeout: no Pong within {_options.KeepAliveTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        }

        if (exception is WebSocketException { WebSocketErrorCode: WebSocketError.Faulted, InnerException: null or System.Text.DecoderFallbackException }
            && socket.State is WebSocketState.CloseReceived or WebSocketState.Closed)
        {
            // A Close frame arrived, and ClientWebSocket refused it (a code that may not be sent or is out of range, a
            // one-byte payload, a reason that is not UTF-8) and answered with 1002. Not a lost link: the server broke
            // the protocol, and the policy hears 1002, not 1006.
            var what = exception.InnerException is System.Text.DecoderFallbackException
                ? "a reason that is not valid UTF-8"
                : "a code that may not be sent, a code out of range or a one-byte payload";
            return new CloseRecord
            {
                Code = CloseCode.ProtocolError,
                Initiator = CloseInitiator.Client,
                CloseFrameReceived = true,
                Exception = exception,
                Cause = CloseCause.ProtocolViolation,
                Description = $"the client failed the connection with 1002: the server sent an invalid Close frame ({what})",
            };
        }

        if (exception is WebSocketException { WebSocketErrorCode: WebSocketError.Faulted, InnerException: null } && socket.State == WebSocketState.Aborted)
        {
            // ClientWebSocket failed the connection itself (it sent the Close frame, then aborted): the server broke
            // the protocol. There is no I/O error behind it, which is what tells it from a lost link.
            var code = IsInvalidPayload(exception) ? CloseCode.InvalidPayloadData : CloseCode.ProtocolError;
            var what = code == CloseCode.InvalidPayloadData ? "a text message that is not valid UTF-8" : exception.Message;
            return Ended(code, CloseInitiator.Client, exception, CloseCause.ProtocolViolation,
                $"the client failed the connection with {code.Value.ToString(CultureInfo.InvariantCulture)}: the server sent {what}");
        }

        var cause = exception is WebSocketException { WebSocketErrorCode: WebSocketError.ConnectionClosedPrematurely }
            ? "the connection was lost without a Close frame"
            : $"the connection failed without a Close frame: {exception.Message}";
        return Ended(CloseCode.AbnormalClosure, CloseInitiator.Transport, exception, CloseCause.ConnectionLost, cause);
    }

    /// <summary>A connection that ended without a Close frame from the server.</summary>
    private static CloseRecord Ended(CloseCode code, CloseInitiator initiator, Exception? exception, CloseCause cause, string description, string? reason = null) => new()
    {
        Code = code,
        Reason = reason,
        Initiator = initiator,
        Exception = exception,
        Cause = cause,
        Description = description,
    };

    // ManagedWebSocket fails a frame header it cannot accept with 1002 and a message naming the fault, and a text
    // message that is not UTF-8 with 1007 and only the generic "Faulted" message; the exception carries no code.
    private static readonly string GenericFaultedMessage = new WebSocketException(WebSocketError.Faulted).Message;

    private static bool IsInvalidPayload(Exception exception) => exception.Message == GenericFaultedMessage;
}
