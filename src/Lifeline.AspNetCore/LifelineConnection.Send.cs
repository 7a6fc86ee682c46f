using System.Buffers;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using Lifeline.CloseCodes;

namespace Lifeline.AspNetCore;

// The outbound side: a bounded buffer (messages and bytes) drained by one writer, which alone touches the socket's
// send side, and the Close frame, which the writer sends after what was queued before it. The writer runs only while
// there is something to write (it is started on the thread pool by the first item queued and ends when the buffer is
// empty), so an idle connection has no writer waiting, and the buffer itself is created by the first send.
public sealed partial class LifelineConnection
{
    private readonly Lock _outgoingLock = new();
    private LazySignal _writerDone; // the writer has sent the Close frame, or given up; under _outgoingLock
    private LazySignal _closeRequested; // under _outgoingLock
    private Queue<Outbound>? _outgoing;
    private OutboundWriter? _writer;
    private bool _writing; // a writer is running (or has finished for good, once the Close step ran)
    private bool _writeFailed;
    private int _queuedMessages;
    private long _queuedBytes;
    private long _queuedEver; // messages ever queued; less _queuedMessages, those the writer took off (written or dropped)
    private TaskCompletionSource? _room;
    private (CloseCode Code, string Reason)? _closeRequest;
    private bool _discardQueued;
    private CancellationTokenSource? _writeTimeout; // the writer task's alone

    /// <summary>Sends a text message; see <see cref="SendAsync"/>.</summary>
    /// <exception cref="InvalidOperationException">The connection is closing or closed.</exception>
    public ValueTask SendTextAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        return SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);
    }

    /// <summary>
    /// Puts a message in this connection's outbound buffer; it completes once the message is queued, not when it has
    /// reached the socket. When the buffer is full it waits for room up to <see cref="LifelineServerOptions.SendTimeout"/>;
    /// past that the client is closed as a slow consumer and this throws.
    /// </summary>
    /// <exception cref="InvalidOperationException">The connection is closing or closed (or was just closed as a slow consumer).</exception>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default)
    {
        if (type == WebSocketMessageType.Close)
        {
            throw new ArgumentException("Close is not a message type; call CloseAsync.", nameof(type));
        }

        var item = Outbound.Copy(data, type);
        long? started = null;
        try
        {
            while (true)
            {
                Task room;
                lock (_outgoingLock)
                {
                    ThrowIfClosingLocked();
                    if (TryQueueLocked(item))
                    {
                        item = default;
                        return;
                    }

                    room = (_room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                }

                started ??= _time.GetTimestamp();
                var left = _options.SendTimeout - _time.GetElapsedTime(started.Value);
                try
                {
                    await room.WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    CloseSlowConsumer($"the outbound buffer stayed full for {_options.SendTimeout}");
                    ThrowClosing();
                }
            }
        }
        finally
        {
            item.Return();
        }
    }

    /// <summary>
    /// Sends a Close frame after the messages already queued (a client on a slow link that keeps reading gets all of them
    /// first: each write is bounded by <see cref="LifelineServerOptions.SendTimeout"/>, the whole backlog is not); the
    /// connection ends when the client answers, or is aborted when it has not answered
    /// <see cref="LifelineServerOptions.SendTimeout"/> after the frame went out (or at the drain timeout). Reasons longer
    /// than 123 bytes of UTF-8 are shortened on a character boundary. Every call after
    /// the first waits for the same Close frame and sends nothing more; after the connection ended it does nothing.
    /// </summary>
    /// <exception cref="ArgumentException">The code may not be sent by an endpoint (1005, 1006, 1015, 1004, 1016-2999, outside 1000-4999).</exception>
    public Task CloseAsync(CloseCode code, string? reason = null, CancellationToken cancellationToken = default) =>
        CloseCoreAsync(code, reason, abortUnanswered: true, cancellationToken);

    /// <summary>
    /// A drain's close: as <see cref="CloseAsync"/>, but an unanswered Close is left to the drain, which waits up to
    /// <see cref="LifelineServerOptions.DrainTimeout"/> for both (a client
    /// still reading its backlog gets that long; each write is bounded by <see cref="LifelineServerOptions.SendTimeout"/>).
    /// </summary>
    internal Task CloseForDrainAsync(CloseCode code, string reason, CancellationToken cancellationToken) =>
        CloseCoreAsync(code, reason, abortUnanswered: false, cancellationToken);

    private async Task CloseCoreAsync(CloseCode code, string? reason, bool abortUnanswered, CancellationToken cancellationToken)
    {
        if (!code.CanBeSent)
        {
            throw new ArgumentException(
                $"Close code {code} ({code.Info.GetName(System.Globalization.CultureInfo.InvariantCulture)}) may not be sent by an endpoint. " +
                "Use 1000 (done), 1001 (going away), 1008 (policy), 1011 (error), 1012 (restart), 1013 (try later) or 3000-4999.",
                nameof(code));
        }

        if (RequestClose(code, CloseReason.Truncate(reason), discardQueued: false) && abortUnanswered)
        {
            _ = AbortUnlessAnsweredAsync();
        }

        // The Close frame waits behind the backlog, each write bounded by SendTimeout (a write that takes longer ends
        // the link as a slow consumer's), so the wait ends: a client on a slow link that keeps reading gets everything
        // queued and then the code. A fixed 5 s bound reset such a link (1006, the rest of its backlog cut).
        await WriterDone().WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// After our Close frame went out, the client gets <see cref="LifelineServerOptions.SendTimeout"/> to answer it; then
    /// the link is aborted. A client whose application froze with its TCP stack alive takes our Close but never answers,
    /// and with keep-alive off nothing else would end the receive loop (hence <see cref="Messages"/>, the handler, and
    /// the connection's slot).
    /// </summary>
    private async Task AbortUnlessAnsweredAsync()
    {
        await WriterDone().ConfigureAwait(false);
        try
        {
            await Task.Delay(_options.SendTimeout, _time, Closing).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // the receive loop ended: the client answered, or the link is gone
        }

        if (_socket.State is not (WebSocketState.Closed or WebSocketState.Aborted))
        {
            ServerLog.CloseNotAnswered(_logger, Id, _options.SendTimeout);
            _socket.Abort();
        }
    }

    /// <summary>
    /// Queues a copy of the message when it fits now: false, with nothing queued, when the outbound buffer is full or the
    /// connection is closing (the caller then takes <see cref="SendAsync"/>, which waits for room or throws).
    /// </summary>
    internal bool TryQueueNow(ReadOnlyMemory<byte> data, WebSocketMessageType type)
    {
        var item = Outbound.Copy(data, type);
        lock (_outgoingLock)
        {
            if (_closeRequest is null && TryQueueLocked(item))
            {
                return true;
            }
        }

        item.Return();
        return false;
    }

    /// <summary>Whether a close was requested (a send then throws <see cref="InvalidOperationException"/>).</summary>
    internal bool IsCloseRequested
    {
        get
        {
            lock (_outgoingLock)
            {
                return _closeRequest is not null;
            }
        }
    }

    /// <summary>How many messages were ever queued: a mark for <see cref="HasWrittenPast"/>.</summary>
    internal long QueuedMark
    {
        get
        {
            lock (_outgoingLock)
            {
                return _queuedEver;
            }
        }
    }

    /// <summary>Whether the writer has taken every message queued up to <paramref name="mark"/> off the queue.</summary>
    internal bool HasWrittenPast(long mark)
    {
        lock (_outgoingLock)
        {
            return _queuedEver - _queuedMessages >= mark;
        }
    }

    /// <summary>Whether a sender waits for room in the full outbound buffer now.</summary>
    internal bool HasSendersWaitingForRoom
    {
        get
        {
            lock (_outgoingLock)
            {
                return _room is not null && _closeRequest is null;
            }
        }
    }

    /// <summary>Queues a broadcast without ever waiting: false when the connection is closing or just fell behind.</summary>
    internal bool TryQueueBroadcast(ReadOnlyMemory<byte> data, WebSocketMessageType type)
    {
        if (TryQueueNow(data, type))
        {
            return true;
        }

        CloseSlowConsumer($"a broadcast found the outbound buffer full ({_options.SendBufferMessages} messages, {_options.SendBufferBytes} bytes)");
        return false;
    }

    /// <summary>The link is over: nothing more is written, queued messages are released, and the writer ends.</summary>
    internal async Task StopWriterAsync()
    {
        lock (_outgoingLock)
        {
            _discardQueued = true;
            _closeRequest ??= (CloseCodes.CloseCode.AbnormalClosure, string.Empty);
            _closeRequested.SetLocked();
            StartWriterLocked();
        }

        await WriterDone().ConfigureAwait(false);
    }

    /// <summary>Closes the connection with 4008 as a slow consumer; <paramref name="detail"/> says why, in the log.</summary>
    internal void CloseSlowConsumer(string detail)
    {
        // Decided by the request itself: a check before it let two broadcasts that found the buffer full together (or
        // a drain's 1012 in between) both go on, counting the connection twice or recording 4008 for a 1012.
        if (!RequestClose(ServerCloseCodes.SlowConsumer, ServerCloseCodes.SlowConsumerReason, discardQueued: true))
        {
            return; // closing already, for this or another reason
        }

        ServerLog.SlowConsumer(_logger, Id, detail);
        _metrics.SlowConsumers.Add(1);
        ClosedWith ??= ServerCloseCodes.SlowConsumer;
        _ = CancelClosingAsync();
        _ = EndSlowConsumerAsync();
    }

    /// <summary>
    /// A slow consumer is not reading, so when the kernel took our Close frame it may never read it nor answer it, and
    /// the receive loop (hence <see cref="Messages"/> and <see cref="Completion"/>) would wait for that answer until the
    /// keep-alive gave up, or for ever with keep-alive off. Once the writer is done (its write and the Close frame are each
    /// bounded by <see cref="LifelineServerOptions.SendTimeout"/>), the client gets one more SendTimeout to answer; then
    /// the link is aborted.
    /// </summary>
    private async Task EndSlowConsumerAsync()
    {
        await WriterDone().ConfigureAwait(false);
        try
        {
            await Completion.WaitAsync(_options.SendTimeout, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            if (_socket.State is not (WebSocketState.Closed or WebSocketState.Aborted))
            {
                _socket.Abort();
            }
        }
    }

    /// <summary>Asks the writer for a Close frame after what is queued; false when a close was requested before.</summary>
    private bool RequestClose(CloseCode code, string reason, bool discardQueued)
    {
        lock (_outgoingLock)
        {
            if (_closeRequest is not null)
            {
                return false;
            }

            _closeRequest = (code, reason);
            _closeRequested.SetLocked();
            _discardQueued = discardQueued;
            WakeSendersLocked();
            StartWriterLocked(); // to send the Close frame when nothing else is queued
            return true;
        }
    }

    /// <summary>Queues an item when it fits; the caller has checked that no close was requested.</summary>
    private bool TryQueueLocked(Outbound item)
    {
        var fits = _queuedMessages < _options.SendBufferMessages
            && (_queuedBytes == 0 || _queuedBytes + item.Length <= _options.SendBufferBytes);
        if (!fits)
        {
            return false;
        }

        (_outgoing ??= new Queue<Outbound>()).Enqueue(item);
        _queuedEver++;
        _queuedMessages++;
        _queuedBytes += item.Length;
        StartWriterLocked();
        return true;
    }

    private Task WriterDone()
    {
        lock (_outgoingLock)
        {
            return _writerDone.WaitLocked();
        }
    }

    /// <summary>Completes once a Close was asked for (by anyone) or the link is over.</summary>
    private Task CloseRequested()
    {
        lock (_outgoingLock)
        {
            return _closeRequested.WaitLocked();
        }
    }

    /// <summary>Starts the writer unless one is running; it only queues a work item, so it is safe under the lock.</summary>
    private void StartWriterLocked()
    {
        if (!_writing)
        {
            _writing = true;
            // On the thread pool, never inline: a sender returns once its message is queued, whatever the socket does.
            ThreadPool.UnsafeQueueUserWorkItem(_writer ??= new OutboundWriter(this), preferLocal: false);
        }
    }

    private void ThrowIfClosingLocked()
    {
        if (_closeRequest is not null)
        {
            ThrowClosing();
        }
    }

    private void ThrowClosing() =>
        throw new InvalidOperationException($"Connection {Id} is closing or closed ({_socket.State}); it can no longer send.");

    private void WakeSendersLocked()
    {
        _room?.TrySetResult();
        _room = null;
    }

    /// <summary>
    /// Writes what is queued, in order, and ends when the buffer is empty; a later send starts it again. Once a Close
    /// was requested and everything before it is written (or discarded), it sends the Close frame and never runs again.
    /// </summary>
    private async Task WriteQueuedAsync()
    {
        var emptied = false;
        try
        {
            (CloseCode Code, string Reason)? close;
            while (true)
            {
                Outbound item;
                lock (_outgoingLock)
                {
                    close = _closeRequest;
                    if (_outgoing is null || !_outgoing.TryDequeue(out item))
                    {
                        if (close is null)
                        {
                            DisposeWriteTimeout(); // still the only writer here: an idle connection holds no timer
                            _writing = false; // the next item queued starts a new writer
                            emptied = true;
                            return;
                        }

                        break; // _writing stays true: after the Close step nothing is written any more
                    }
                }

                try
                {
                    if (!_writeFailed && !Volatile.Read(ref _discardQueued))
                    {
                        _writeFailed = !await WriteAsync(item).ConfigureAwait(false);
                    }
                }
                finally
                {
                    item.Return();
                    lock (_outgoingLock)
                    {
                        _queuedMessages--;
                        _queuedBytes -= item.Length;
                        WakeSendersLocked();
                    }
                }
            }

            // A Close frame was asked for, or the link is over.
            if (!_writeFailed && close is { } closing && closing.Code.CanBeSent && _socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(_options.SendTimeout, _time);
                await _socket.CloseOutputAsync(closing.Code.ToWebSocketCloseStatus(), closing.Reason.Length == 0 ? null : closing.Reason, timeout.Token).ConfigureAwait(false);
                ClosedWith ??= closing.Code;
                _metrics.ClosesSent.Add(1, new KeyValuePair<string, object?>("close_code", closing.Code.Value));
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            _socket.Abort(); // a link that cannot take a Close frame is dead
            lock (_outgoingLock)
            {
                _writeFailed = true;
                _closeRequest ??= (CloseCodes.CloseCode.AbnormalClosure, string.Empty);
                _closeRequested.SetLocked();
                WakeSendersLocked();
            }

            ReleaseQueued();
        }
        finally
        {
            if (!emptied)
            {
                DisposeWriteTimeout(); // this writer was the last one: nothing is written after the Close step
                lock (_outgoingLock)
                {
                    _writerDone.SetLocked();
                }
            }
        }
    }

    /// <summary>After the writer failed: gives back what is still queued (nothing will write it).</summary>
    private void ReleaseQueued()
    {
        lock (_outgoingLock)
        {
            while (_outgoing is not null && _outgoing.TryDequeue(out var item))
            {
                item.Return();
                _queuedMessages--;
                _queuedBytes -= item.Length;
            }
        }
    }

    private void DisposeWriteTimeout()
    {
        _writeTimeout?.Dispose();
        _writeTimeout = null;
    }

    /// <summary>Writes one message within the send timeout; false when the link failed or the client fell behind.</summary>
    /// <remarks>
    /// A write the socket takes at once (the usual case: the transport had room) needs no timeout, so it costs no token
    /// source, timer or registration. Only a write left pending gets the timeout; when it runs out, the socket is aborted,
    /// which is what cancelling the write would have done.
    /// </remarks>
    private ValueTask<bool> WriteAsync(Outbound item)
    {
        ValueTask pending;
        try
        {
            pending = _socket.SendAsync(item.Memory, item.Type, endOfMessage: true, CancellationToken.None);
            if (pending.IsCompleted)
            {
                pending.GetAwaiter().GetResult(); // taken at once, or failed at once (closed or aborted): nothing to time
                return new ValueTask<bool>(true);
            }
        }
        catch (Exception e) when (IsLinkFailure(e))
        {
            return new ValueTask<bool>(false);
        }

        return WaitForWriteAsync(pending);
    }

    /// <summary>How a write fails when the link is over (closed, aborted, or cut by the send timeout).</summary>
    private static bool IsLinkFailure(Exception e) =>
        e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WaitForWriteAsync(ValueTask pending)
    {
        // One token source serves every pending write of the writer while none times out (reset, then re-armed).
        if (_writeTimeout is null || !_writeTimeout.TryReset())
        {
            _writeTimeout?.Dispose();
            _writeTimeout = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        }

        var timeout = _writeTimeout;
        timeout.CancelAfter(_options.SendTimeout);
        using var onTimeout = timeout.Token.UnsafeRegister(static connection => ((LifelineConnection)connection!).OnWriteTimedOut(), this);
        try
        {
            await pending.ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (IsLinkFailure(e))
        {
            return false; // the link failed, or the timeout ended it (see OnWriteTimedOut)
        }
    }

    /// <summary>A write stayed pending for the whole send timeout: the client is a slow consumer, and the link is aborted.</summary>
    private void OnWriteTimedOut()
    {
        // Recorded before the abort, which the receive side would otherwise report first as a lost link (1006). The
        // socket cannot take a Close frame either: the write ahead of it is stuck.
        CloseSlowConsumer($"writing one message took longer than {_options.SendTimeout}");
        _socket.Abort();
    }

    /// <summary>Runs the writer on the thread pool; created by the first send and reused, so starting it allocates nothing.</summary>
    private sealed class OutboundWriter(LifelineConnection connection) : IThreadPoolWorkItem
    {
        public void Execute() => _ = connection.WriteQueuedAsync();
    }

    /// <summary>A message in the outbound buffer, in a pooled array.</summary>
    private readonly record struct Outbound(byte[]? Buffer, int Length, WebSocketMessageType Type)
    {
        public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, Length);

        public static Outbound Copy(ReadOnlyMemory<byte> data, WebSocketMessageType type)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(data.Length);
            data.CopyTo(buffer);
            return new Outbound(buffer, data.Length, type);
        }

        public void Return()
        {
            if (Buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(Buffer);
            }
        }
    }
}
