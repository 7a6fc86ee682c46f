using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using Lifeline.CloseCodes;

namespace Lifeline.AspNetCore;

// The outbound side: a bounded buffer (messages and bytes) drained by one writer task, which alone touches the
// socket's send side, and the Close frame, which the writer sends after what was queued before it.
public sealed partial class LifelineConnection
{
    private static readonly TimeSpan CloseSendBound = TimeSpan.FromSeconds(5);

    private readonly Channel<Outbound> _outgoing;
    private readonly Lock _outgoingLock = new();
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closeRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _writer;
    private int _queuedMessages;
    private long _queuedBytes;
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
    /// Sends a Close frame after the messages already queued; the connection ends when the client answers (or after the
    /// drain timeout). Reasons longer than 123 bytes of UTF-8 are shortened on a character boundary. Every call after
    /// the first waits for the same Close frame and sends nothing more; after the connection ended it does nothing.
    /// </summary>
    /// <exception cref="ArgumentException">The code may not be sent by an endpoint (1005, 1006, 1015, 1004, 1016-2999, outside 1000-4999).</exception>
    public async Task CloseAsync(CloseCode code, string? reason = null, CancellationToken cancellationToken = default)
    {
        if (!code.CanBeSent)
        {
            throw new ArgumentException(
                $"Close code {code} ({code.Info.GetName(System.Globalization.CultureInfo.InvariantCulture)}) may not be sent by an endpoint. " +
                "Use 1000 (done), 1001 (going away), 1008 (policy), 1011 (error), 1012 (restart), 1013 (try later) or 3000-4999.",
                nameof(code));
        }

        RequestClose(code, CloseReason.Truncate(reason), discardQueued: false);
        try
        {
            await _writerDone.Task.WaitAsync(CloseSendBound, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _socket.Abort(); // a link that cannot take a Close frame in that time is as good as dead
        }
    }

    /// <summary>Queues a broadcast without ever waiting: false when the connection is closing or just fell behind.</summary>
    internal bool TryQueueBroadcast(ReadOnlyMemory<byte> data, WebSocketMessageType type)
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
            _closeRequested.TrySetResult();
            _outgoing.Writer.TryComplete();
        }

        await _writer.ConfigureAwait(false);
    }

    private void CloseSlowConsumer(string detail)
    {
        lock (_outgoingLock)
        {
            if (_closeRequest is not null)
            {
                return; // closing already, for this or another reason
            }
        }

        ServerLog.SlowConsumer(_logger, Id, detail);
        _metrics.SlowConsumers.Add(1);
        ClosedWith ??= ServerCloseCodes.SlowConsumer;
        RequestClose(ServerCloseCodes.SlowConsumer, ServerCloseCodes.SlowConsumerReason, discardQueued: true);
        _ = _closing.CancelAsync();
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
        await _writerDone.Task.ConfigureAwait(false);
        try
        {
            await _completion.Task.WaitAsync(_options.SendTimeout, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            if (_socket.State is not (WebSocketState.Closed or WebSocketState.Aborted))
            {
                _socket.Abort();
            }
        }
    }

    private void RequestClose(CloseCode code, string reason, bool discardQueued)
    {
        lock (_outgoingLock)
        {
            if (_closeRequest is not null)
            {
                return;
            }

            _closeRequest = (code, reason);
            _closeRequested.TrySetResult();
            _discardQueued = discardQueued;
            _outgoing.Writer.TryComplete();
            WakeSendersLocked();
        }
    }

    private bool TryQueueLocked(Outbound item)
    {
        var fits = _queuedMessages < _options.SendBufferMessages
            && (_queuedBytes == 0 || _queuedBytes + item.Length <= _options.SendBufferBytes);
        if (!fits || !_outgoing.Writer.TryWrite(item))
        {
            return false;
        }

        _queuedMessages++;
        _queuedBytes += item.Length;
        return true;
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

    private async Task WriteLoopAsync()
    {
        var failed = false;
        try
        {
            await foreach (var item in _outgoing.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                try
                {
                    if (!failed && !Volatile.Read(ref _discardQueued))
                    {
                        failed = !await WriteAsync(item).ConfigureAwait(false);
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

            // The buffer was completed: a Close frame was asked for, or the link is over.
            (CloseCode Code, string Reason)? close;
            lock (_outgoingLock)
            {
                close = _closeRequest;
            }

            if (!failed && close is { } request && request.Code.CanBeSent && _socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(_options.SendTimeout, _time);
                await _socket.CloseOutputAsync(request.Code.ToWebSocketCloseStatus(), request.Reason.Length == 0 ? null : request.Reason, timeout.Token).ConfigureAwait(false);
                ClosedWith ??= request.Code;
                _metrics.ClosesSent.Add(1, new KeyValuePair<string, object?>("close_code", request.Code.Value));
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            _socket.Abort(); // a link that cannot take a Close frame is dead
        }
        finally
        {
            _writeTimeout?.Dispose();
            _writeTimeout = null;
            _writerDone.TrySetResult();
        }
    }

    /// <summary>Writes one message within the send timeout; false when the link failed or the client fell behind.</summary>
    private async ValueTask<bool> WriteAsync(Outbound item)
    {
        // One token source serves every write of the writer while none times out (reset, then re-armed), so a write
        // costs no timer of its own.
        if (_writeTimeout is null || !_writeTimeout.TryReset())
        {
            _writeTimeout?.Dispose();
            _writeTimeout = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        }

        var timeout = _writeTimeout;
        timeout.CancelAfter(_options.SendTimeout);
        try
        {
            await _socket.SendAsync(item.Memory, item.Type, endOfMessage: true, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            // The socket cannot take a Close frame either (the cancelled write aborted it): record why it ended.
            CloseSlowConsumer($"writing one message took longer than {_options.SendTimeout}");
            _socket.Abort();
            return false;
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or IOException)
        {
            return false;
        }
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
