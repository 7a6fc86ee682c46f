using System.Buffers;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using Lifeline.CloseCodes;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.Client;

public sealed partial class LifelineClient
{
    // Owned by the queue's writer: the message being written when the connection failed, resent first next time.
    private OutgoingMessage? _inFlight;

    // The socket sends may write to directly: set while the connection takes writes (after OnReconnected in plain mode), with the
    // session it carries in session mode (a direct write numbers the message in that session only).
    private ClientWebSocket? _directSocket;
    private ClientSession? _directSession;

    /// <summary>The lock every write to the socket takes; a client that never writes never creates it.</summary>
    private SemaphoreSlim SendLock => LazyInitializer.EnsureInitialized(ref _sendLock, static () => new SemaphoreSlim(1, 1));

    /// <summary>Sends a text message, encoded once as UTF-8 into pooled memory. See <see cref="SendAsync"/>.</summary>
    public ValueTask SendTextAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, Encoding.UTF8.GetMaxByteCount(text.Length)));
        var length = Encoding.UTF8.GetBytes(text, buffer);
        ValueTask send;
        try
        {
            send = SendAsync(buffer.AsMemory(0, length), WebSocketMessageType.Text, cancellationToken);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        if (send.IsCompletedSuccessfully)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return default;
        }

        return ReturnAfterAsync(send, buffer);

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // per message: no box allocated when it goes asynchronous
        static async ValueTask ReturnAfterAsync(ValueTask send, byte[] buffer)
        {
            try
            {
                await send.ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// Sends a message. Messages are written in the order they were accepted. When the client is connected, nothing is
    /// queued ahead and <paramref name="cancellationToken"/> cannot be cancelled, the message is written straight to the
    /// socket from <paramref name="data"/> (no queue) and the task completes once it was written; the caller must
    /// not change <paramref name="data"/> until then. "Written" means handed to the connection, as a socket's send hands
    /// its bytes to the kernel: over HTTP/1.1, a sender that streams (it sends again before anything was read) has its
    /// frames copied into the connection's write buffer (at most 64 KiB, pooled, held only while not empty), which a
    /// thread-pool worker writes to the connection in few large writes; an answer to something just read is written at
    /// once. In session mode such a message is numbered, copied once into the
    /// replay buffer (pooled memory) and its Data frame written from that copy; the task completes once it was written.
    /// When the replay buffer is full (mode <see cref="Lifeline.Session.ReplayBufferFullMode.Wait"/>) such a send is queued
    /// and completes once written: the queue's writer waits for the server's acknowledgements to make room, one message
    /// after the other, in the order of the calls (the send queue's bounds and full mode apply, as to any send queued
    /// behind others). Otherwise the bytes are copied into the bounded send queue (the
    /// caller may reuse its buffer as soon as the call returns). The task then completes when the message was queued;
    /// except that a send without a cancellable token made while the connection takes writes (it found messages queued
    /// ahead) completes once written, as a direct one, or without error once it will not be written on this connection
    /// (the connection failed or ended first, or the message was dropped: stale, full queue, stop): so a sender that
    /// awaits each send lets the queue empty and goes back to direct writes. While disconnected a queued message waits and goes out
    /// after the next connection (in plain mode after <see cref="LifelineClientOptions.OnReconnected"/>). Neither means the server received it: use a session and
    /// <see cref="SendAndWaitAckAsync"/> for end-to-end acknowledgement.
    /// </summary>
    /// <remarks>
    /// A direct write that fails because the connection was lost under it is not an error: the message is kept, first in
    /// line, and written after the next connection, as a queued one would be. A message already handed to the connection
    /// is not kept in plain mode (it may be lost with the connection, as bytes in the kernel's send buffer are); a
    /// session replays it.
    /// </remarks>
    /// <exception cref="LifelineClosedException">The client is stopping, closed or disposed; also thrown to a send that was waiting for room when that happened.</exception>
    /// <exception cref="InvalidOperationException">The client is disconnected and queueing is off.</exception>
    /// <exception cref="SendQueueFullException">The queue is full and its mode is <see cref="SendQueueFullMode.Fail"/>.</exception>
    /// <exception cref="ArgumentException">The type is Close; or, in session mode, the message is larger than the replay buffer holds or the server accepts.</exception>
    /// <exception cref="Lifeline.Session.ReplayBufferFullException">Session mode: the replay buffer is full and its mode is <see cref="Lifeline.Session.ReplayBufferFullMode.Fail"/>.</exception>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default)
    {
        if (_options.Session is not null)
        {
            ThrowIfTooLargeForSession(data);
        }

        if (!cancellationToken.CanBeCanceled && type != WebSocketMessageType.Close && Volatile.Read(ref _directSocket) is { } socket && SendLock.Wait(0, CancellationToken.None))
        {
            // Not while the queue's writer holds a message it could not write yet (the connection failed under it): that
            // one was accepted first.
            if (!_queue.CanWriteDirect || Volatile.Read(ref _inFlight) is not null || Volatile.Read(ref _directSocket) != socket)
            {
                SendLock.Release();
                return EnqueueAsync(data, type, null, cancellationToken);
            }

            if (_options.Session is not null)
            {
                return SendSessionDirect(socket, data, type);
            }

            ValueTask write;
            try
            {
                write = socket.SendAsync(data, type, endOfMessage: true, CancellationToken.None);
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException)
            {
                write = ValueTask.FromException(e);
            }

            if (write.IsCompletedSuccessfully)
            {
                SendLock.Release();
                Interlocked.Increment(ref _sent);
                return default;
            }

            return CompleteDirectAsync(write, data, type);
        }

        return EnqueueAsync(data, type, null, cancellationToken);
    }

    /// <summary>Tests: runs in a direct session send, holding the send lock, just before the message is numbered.</summary>
    internal Action? BeforeDirectSessionAppendForTest { get; set; }

    /// <summary>Tests: the sequence number of the last message the current session numbered (0 without a session).</summary>
    internal long LastSequenceNumberedForTest => Volatile.Read(ref _session)?.Replay.LastSequence ?? 0;

    /// <summary>
    /// Session mode: a message that can never be sent is refused at the call, where the caller learns it, instead of
    /// being queued and then dropped (or, bigger than the server's frame limit, closing the connection with 1009).
    /// </summary>
    /// <exception cref="ArgumentException">The payload is larger than the replay buffer holds or the server accepts.</exception>
    private void ThrowIfTooLargeForSession(ReadOnlyMemory<byte> data)
    {
        var length = data.Length;
        var replayLimit = _options.Session!.Replay.MaxBytes;
        if (length > replayLimit)
        {
            throw new ArgumentException(
                $"The message is {length} bytes but the session's replay buffer holds at most {replayLimit}; raise SessionOptions.Replay.MaxBytes or send smaller messages.", nameof(data));
        }

        // The exact header length takes two locks: only worked out for a message that a header of the worst case would not fit.
        if (Volatile.Read(ref _session) is { } session && length > session.MaxFrameBytes - SessionFrameWriter.MaxDataHeaderLength &&
            length > session.MaxFrameBytes - NextDataHeaderLength(session))
        {
            throw new ArgumentException(
                $"The message is {length} bytes but the server accepts session frames of at most {session.MaxFrameBytes} bytes (header included); send smaller messages.", nameof(data));
        }
    }

    /// <summary>
    /// The header length of the session's next Data frame, at most: its sequence and an ack no higher than what was
    /// delivered, with a little room for the numbers to grow meanwhile. The worst case (21 bytes) would refuse messages
    /// that fit.
    /// </summary>
    private static int NextDataHeaderLength(ClientSession session) =>
        1 + Varint.GetLength((ulong)session.Replay.LastSequence + 2) + Varint.GetLength((ulong)session.Inbound.LastDelivered + 1);

    /// <summary>
    /// Session mode, send lock held: numbers the message, keeps it in the replay buffer (which leaves room for the frame
    /// header in front of the copy) and writes the Data frame from that copy. Falls back to the queue when the append would
    /// wait or decide something (full, ended) or the session is not the one the open connection carries.
    /// </summary>
    private ValueTask SendSessionDirect(ClientWebSocket socket, ReadOnlyMemory<byte> data, WebSocketMessageType type)
    {
        var session = Volatile.Read(ref _session);
        var isText = type == WebSocketMessageType.Text;
        if (session is null || session != Volatile.Read(ref _directSession))
        {
            SendLock.Release();
            return EnqueueAsync(data, type, null, CancellationToken.None);
        }

        BeforeDirectSessionAppendForTest?.Invoke();
        if (!session.Replay.TryAppendForWrite(data.Span, isText, SessionFrameWriter.MaxDataHeaderLength, out var sequence, out var buffer, out var offset))
        {
            SendLock.Release();
            try
            {
                session.Replay.ThrowIfFullInFailMode(data.Length);
            }
            catch (ReplayBufferFullException e)
            {
                return ValueTask.FromException(e);
            }

            // Full, or ended: the queue, whose one writer waits for room in turn. A send that waited for room on its own
            // raced every other such send for the socket when an ack made room, so they went out out of call order. The
            // queue's bounds and full mode apply to it as to any send queued behind others (the default mode waits).
            return EnqueueAsync(data, type, null, CancellationToken.None);
        }

        // The ack is taken under the send lock, so acks on the wire never go backwards.
        var frame = DataFrameInPlace.Build(buffer, offset, data.Length, sequence, session.Inbound.TakeAck(), isText);
        ValueTask write;
        try
        {
            write = socket.SendAsync(frame.Bytes, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            write = ValueTask.FromException(e);
        }

        if (write.IsCompletedSuccessfully)
        {
            frame.Return();
            session.Replay.EndWrite();
            SendLock.Release();
            Interlocked.Increment(ref _sent);
            return default;
        }

        return CompleteSessionDirectAsync(write, session, frame);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // per message: no box allocated when it goes asynchronous
    private async ValueTask CompleteSessionDirectAsync(ValueTask write, ClientSession session, DataFrameInPlace frame)
    {
        try
        {
            await write.ConfigureAwait(false);
            Interlocked.Increment(ref _sent);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The connection was lost under the write: the replay buffer holds the message, and the resume resends it.
        }
        finally
        {
            frame.Return();
            session.Replay.EndWrite();
            SendLock.Release();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // per message: no box allocated when it goes asynchronous
    private async ValueTask CompleteDirectAsync(ValueTask write, ReadOnlyMemory<byte> data, WebSocketMessageType type)
    {
        try
        {
            await write.ConfigureAwait(false);
            Interlocked.Increment(ref _sent);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The connection was lost under the write: keep the message for the next connection, first in line.
            _queue.PutFirst(new OutgoingMessage(data.Span, type, _time.GetTimestamp()));
        }
        finally
        {
            SendLock.Release();
        }
    }

    private async ValueTask EnqueueAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type, TaskCompletionSource<bool>? acknowledged, CancellationToken cancellationToken)
    {
        if (type == WebSocketMessageType.Close)
        {
            throw new ArgumentException("Close is not a message type; call StopAsync to close.", nameof(type));
        }

        var state = State;
        if (state == LifelineClientState.Closed || _queue.IsCompleted)
        {
            throw new LifelineClosedException($"The client is {(state == LifelineClientState.Closed ? "closed" : "stopping")} ({LastClose?.ToString() ?? LastFailure?.Description ?? "stopped by the application"}); create a new client to send again.");
        }

        // ReplayBufferFullMode.Fail: a full buffer is the sender's error on every path, not only a direct write's.
        Volatile.Read(ref _session)?.Replay.ThrowIfFullInFailMode(data.Length);

        var connected = state == LifelineClientState.Connected;
        if (!connected && !_options.SendQueue.Enabled)
        {
            throw new InvalidOperationException($"The client is {state} and queueing is off (SendQueue.Enabled = false); wait for Connected or enable the queue.");
        }

        // A send that could have been direct (no token) but found the queue busy waits until its message is written, as a
        // direct one would; the others complete once queued. See SendQueue.EnqueueAsync.
        var message = new OutgoingMessage(data.Span, type, _time.GetTimestamp()) { Acknowledged = acknowledged };
        await _queue.EnqueueAsync(message, cancellationToken, untilWritten: !cancellationToken.CanBeCanceled).ConfigureAwait(false);
        if (!connected)
        {
            Interlocked.Increment(ref _queuedWhileDown);
            _metrics.MessagesQueued.Add(1);
        }
    }

    /// <summary>
    /// The connection takes writes: direct sends may go to <paramref name="socket"/>, and the queue's writer runs on it
    /// whenever something is queued (at once when messages waited for this connection). Called after OnReconnected in plain mode, before it in session mode.
    /// </summary>
    private void OpenForSends(ClientWebSocket socket)
    {
        // The queue first: with a message carried over from the last connection its writer is running before direct
        // sends are allowed, so none of them overtakes that message.
        _queue.Open(pending: _inFlight is not null);
        if (_options.Session is null || Volatile.Read(ref _session) is not null)
        {
            Volatile.Write(ref _directSession, Volatile.Read(ref _session));
            Volatile.Write(ref _directSocket, socket);
        }
    }

    /// <summary>Tests: whether the queue's writer holds a message it took but has not written.</summary>
    internal bool HasMessageInFlight => Volatile.Read(ref _inFlight) is not null;

    /// <summary>The connection is over: no more writes to <paramref name="socket"/>; waits for a running writer to give up.</summary>
    private async Task ShutForSendsAsync(ClientWebSocket socket, CancellationTokenSource connection)
    {
        var writer = _queue.Shut();
        await connection.CancelAsync().ConfigureAwait(false);
        await writer.ConfigureAwait(false);
        Interlocked.CompareExchange(ref _directSocket, null, socket);

        // A direct write still on this socket holds the send lock until it has failed and put its message back, first in
        // line. The next connection must not open for sends before that, or its writer sends the message queued behind
        // it first (seen under load: the reconnect came before the failed write's put-back). Bounded: a write that does
        // not end by itself within CloseTimeout is cut by aborting the socket, and the wait never blocks for good.
        if (!await TakeSendLockWithinAsync(_options.CloseTimeout).ConfigureAwait(false))
        {
            socket.Abort();
            if (!await TakeSendLockWithinAsync(_options.CloseTimeout).ConfigureAwait(false))
            {
                return;
            }
        }

        SendLock.Release();
    }

    /// <summary>Takes the send lock, waiting at most <paramref name="bound"/> on the client's clock; false when it did not come.</summary>
    private async Task<bool> TakeSendLockWithinAsync(TimeSpan bound)
    {
        if (SendLock.Wait(0, CancellationToken.None))
        {
            return true;
        }

        using var timeout = new CancellationTokenSource(bound, _time);
        try
        {
            await SendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Starts the queue's writer on the thread pool: the sender must not write it itself (it may return once its message
    /// is queued, and the queue's lock is held). The queue calls it only while a connection is open for sends: the current socket and step are that
    /// connection's. A writer whose writes complete at once allocates nothing beyond the work item.
    /// </summary>
    private void StartWriter() => ThreadPool.UnsafeQueueUserWorkItem(
        static state => _ = state.Client.WriteQueuedAsync(state.Socket, state.Token),
        (Client: this, Socket: _currentSocket!, Token: _step!.Token),
        preferLocal: false);

    /// <summary>
    /// Writes queued messages in order until the queue is empty, then ends. When the queue is completed (a stop) and
    /// empty, writes the Close frame the stop asked for. A message whose write the connection's end cut short stays in
    /// <see cref="_inFlight"/> for the next connection.
    /// </summary>
    private async Task WriteQueuedAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var endedByQueue = false;
        var failed = false;

        // The sender waiting for the message last written is told after the next TakeNext: if that found the queue
        // empty, this writer no longer counts as running, so the sender's next send writes directly.
        TaskCompletionSource? written = null;
        try
        {
            while (true)
            {
                var message = _inFlight;
                if (message is not null && _queue.TrySwapWithPutBack(ref message))
                {
                    _inFlight = message; // a direct write that failed meanwhile was accepted before it: that one goes first
                }

                if (message is null)
                {
                    var next = _queue.TakeNext(out message);
                    written?.TrySetResult();
                    written = null;
                    switch (next)
                    {
                        case TakeResult.Empty:
                            endedByQueue = true;
                            return;
                        case TakeResult.Completed:
                            await SendStopCloseFrameAsync(socket, cancellationToken).ConfigureAwait(false);
                            return;
                    }

                    _inFlight = message;
                }

                if (_options.SendQueue.MaxAgeFor(_options.Session is not null) is { } maxAge && _time.GetElapsedTime(message!.EnqueuedAt) > maxAge)
                {
                    _inFlight = null;
                    message.Release();
                    OnDropped(DropReason.Stale);
                    continue;
                }

                written = message!.TakeWritten();
                if (_options.Session is not null)
                {
                    // No session on a session connection: its session just ended (a SessionLost), and the connection is
                    // about to close. Written bare, the message would count as sent but belong to no session.
                    if (Volatile.Read(ref _session) is not { } session || !await SendSessionMessageAsync(socket, session, message, cancellationToken).ConfigureAwait(false))
                    {
                        failed = true; // the session ended under the message (the connection is closing): it goes out in the next session
                        break;
                    }

                    continue;
                }

                await SendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await socket.SendAsync(message!.Data, message.Type, endOfMessage: true, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    SendLock.Release();
                }

                _inFlight = null;
                message.Release();
                Interlocked.Increment(ref _sent);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection is over; anything in flight stays in _inFlight for the next one.
            failed = true;
        }
        finally
        {
            written?.TrySetResult(); // written, or kept for the next connection: its sender goes on either way
            if (failed)
            {
                _queue.WriterFailed(); // and the senders waiting for queued messages go on
            }
            else if (!endedByQueue)
            {
                _queue.WriterEnded(); // the Close frame was written
            }
        }
    }

    private async ValueTask SendDirectAsync(ClientWebSocket socket, ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken)
    {
        await SendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await socket.SendAsync(data, type, endOfMessage: true, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _sent);
        }
        finally
        {
            SendLock.Release();
        }
    }

    /// <summary>The stop's Close frame, after everything queued was written. Bounded by the stop's deadline.</summary>
    private async Task SendStopCloseFrameAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        CloseCode code;
        string? reason;
        CancellationToken deadline;
        lock (_stateLock)
        {
            (code, reason) = _stopRequest!.Value;
            deadline = _stopDeadline!.Token;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline);
        await SendLock.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            await socket.CloseOutputAsync(code.ToWebSocketCloseStatus(), reason, linked.Token).ConfigureAwait(false);
        }
        finally
        {
            SendLock.Release();
        }
    }
}
