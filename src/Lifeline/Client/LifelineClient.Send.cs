using System.Net.WebSockets;
using System.Text;
using Lifeline.CloseCodes;
using Lifeline.Diagnostics;

namespace Lifeline.Client;

public sealed partial class LifelineClient
{
    // Owned by the send loop: the message being written when the connection failed, resent first next time.
    private OutgoingMessage? _inFlight;

    /// <summary>Sends a text message (UTF-8). See <see cref="SendAsync"/>.</summary>
    public ValueTask SendTextAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        return SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);
    }

    /// <summary>
    /// Accepts a message for sending. The bytes are copied, so the caller may reuse its buffer at once. Messages
    /// are written in the order accepted; while disconnected they wait in the bounded send queue and go out after
    /// the next connection (and after <see cref="LifelineClientOptions.OnReconnected"/>). Completes when the message
    /// is queued, not when it reached the server: use a session for end-to-end acknowledgement.
    /// </summary>
    /// <exception cref="LifelineClosedException">The client is stopping, closed or disposed; also thrown to a send that was waiting for room when that happened.</exception>
    /// <exception cref="InvalidOperationException">The client is disconnected and queueing is off.</exception>
    /// <exception cref="SendQueueFullException">The queue is full and its mode is <see cref="SendQueueFullMode.Fail"/>.</exception>
    /// <exception cref="ArgumentException">The type is Close.</exception>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default) =>
        EnqueueAsync(data, type, null, cancellationToken);

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

        var connected = state == LifelineClientState.Connected;
        if (!connected && !_options.SendQueue.Enabled)
        {
            throw new InvalidOperationException($"The client is {state} and queueing is off (SendQueue.Enabled = false); wait for Connected or enable the queue.");
        }

        await _queue.EnqueueAsync(new OutgoingMessage(data.Span, type, _time.GetTimestamp()) { Acknowledged = acknowledged }, cancellationToken).ConfigureAwait(false);
        if (!connected)
        {
            Interlocked.Increment(ref _queuedWhileDown);
            LifelineMetrics.ClientMessagesQueued.Add(1);
        }
    }

    /// <summary>
    /// Writes queued messages in order until the connection ends. When the queue is completed (a stop) and empty,
    /// writes the Close frame the stop asked for and returns.
    /// </summary>
    private async Task SendLoopAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var message = _inFlight ?? await _queue.DequeueAsync(cancellationToken).ConfigureAwait(false);
                if (message is null)
                {
                    await SendStopCloseFrameAsync(socket, cancellationToken).ConfigureAwait(false);
                    return;
                }

                _inFlight = message;
                if (_options.SendQueue.MaxAge is { } maxAge && _time.GetElapsedTime(message.EnqueuedAt) > maxAge)
                {
                    _inFlight = null;
                    message.Release();
                    OnDropped(DropReason.Stale);
                    continue;
                }

                if (Volatile.Read(ref _session) is { } session)
                {
                    if (!await SendSessionMessageAsync(socket, session, message, cancellationToken).ConfigureAwait(false))
                    {
                        return; // the session ended under the message: it goes out in the next session
                    }

                    continue;
                }

                await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await socket.SendAsync(message.Data, message.Type, endOfMessage: true, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    _sendLock.Release();
                }

                _inFlight = null;
                message.Release();
                Interlocked.Increment(ref _sent);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection is over; anything in flight stays in _inFlight for the next one.
        }
    }

    private async ValueTask SendDirectAsync(ClientWebSocket socket, ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await socket.SendAsync(data, type, endOfMessage: true, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _sent);
        }
        finally
        {
            _sendLock.Release();
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
        await _sendLock.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            await socket.CloseOutputAsync(code.ToWebSocketCloseStatus(), reason, linked.Token).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }
}
