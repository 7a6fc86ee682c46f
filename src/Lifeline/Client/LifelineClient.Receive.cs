using System.Buffers;
using System.Globalization;
using System.Net.WebSockets;
using Lifeline.CloseCodes;

namespace Lifeline.Client;

public sealed partial class LifelineClient
{
    private const int ReceiveChunk = 16 * 1024;
    private int _watchdogFired;

    /// <summary>
    /// Keeps a receive pending for the whole connection (ClientWebSocket processes Pongs, and so detects a dead
    /// link, only while a receive is pending), joins fragments, enforces the maximum size and returns how the
    /// connection ended.
    /// </summary>
    private async Task<CloseRecord> ReceiveLoopAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(ReceiveChunk);
        Volatile.Write(ref _watchdogFired, 0);
        using var watchdog = _options.ReceiveWatchdog is { } period
            ? _time.CreateTimer(_ => OnWatchdog(socket), null, period, Timeout.InfiniteTimeSpan)
            : null;
        try
        {
            while (true)
            {
                buffer.ResetWrittenCount();
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer.GetMemory(ReceiveChunk), cancellationToken).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return await OnCloseFrameAsync(socket).ConfigureAwait(false);
                    }

                    buffer.Advance(result.Count);
                    if (buffer.WrittenCount > _options.MaxMessageSize)
                    {
                        return await CloseTooBigAsync(socket).ConfigureAwait(false);
                    }
                }
                while (!result.EndOfMessage);

                if (Volatile.Read(ref _session) is { } session)
                {
                    watchdog?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                    if (await OnSessionMessageAsync(socket, session, result.MessageType, buffer.WrittenMemory).ConfigureAwait(false) is { } ended)
                    {
                        return ended;
                    }

                    watchdog?.Change(_options.ReceiveWatchdog!.Value, Timeout.InfiniteTimeSpan);
                    continue;
                }

                Interlocked.Increment(ref _received);
                var message = new LifelineMessage(result.MessageType, buffer.WrittenSpan.ToArray());
                if (!_incoming.TryWrite(message))
                {
                    // The application is behind: stop reading (backpressure). A slow reader is not a dead link,
                    // so the watchdog waits too.
                    watchdog?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                    await _incoming.WriteAsync(message, cancellationToken).ConfigureAwait(false);
                }

                watchdog?.Change(_options.ReceiveWatchdog!.Value, Timeout.InfiniteTimeSpan);
            }
        }
#pragma warning disable CA1031 // Every way a receive can fail is a way the connection ended; it is recorded, not thrown.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ClassifyReceiveFailure(e, socket);
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

        if (IsKeepAliveTimeout(exception))
        {
            return Ended(CloseCode.AbnormalClosure, CloseInitiator.Transport, exception, CloseCause.KeepAliveTimeout,
                $"keep-alive timeout: no Pong within {_options.KeepAliveTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
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

    /// <summary>
    /// ClientWebSocket reports a missing Pong as an aborted receive (OperationCanceledException) whose inner
    /// exceptions hold a WebSocketException about the KeepAliveTimeout.
    /// </summary>
    private bool IsKeepAliveTimeout(Exception exception)
    {
        if (!_options.KeepAliveChecksPong)
        {
            return false;
        }

        var pending = new Stack<Exception>();
        pending.Push(exception);
        while (pending.TryPop(out var current))
        {
            if (current is WebSocketException && current.Message.Contains("KeepAliveTimeout", StringComparison.Ordinal))
            {
                return true;
            }

            if (current is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                {
                    pending.Push(inner);
                }
            }
            else if (current.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }

        return false;
    }
}
