using Microsoft.Extensions.Logging;

namespace Lifeline.AspNetCore;

/// <summary>The server's log messages, with fixed event ids.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(101, LogLevel.Debug, "Connection {ConnectionId} accepted from {RemoteEndPoint}.")]
    public static partial void Accepted(ILogger logger, string connectionId, string? remoteEndPoint);

    [LoggerMessage(102, LogLevel.Debug, "Connection {ConnectionId} ended ({Cause}).")]
    public static partial void Ended(ILogger logger, string connectionId, string cause);

    [LoggerMessage(103, LogLevel.Information, "Upgrade refused with {Code}: {Reason}.")]
    public static partial void Rejected(ILogger logger, int code, string reason);

    [LoggerMessage(104, LogLevel.Error, "The handler of connection {ConnectionId} threw; closing it with 1011. Other connections are not affected.")]
    public static partial void HandlerFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(105, LogLevel.Warning, "Draining {Count} connections with {Code}: hints spread over {Min}-{Max}.")]
    public static partial void DrainStarted(ILogger logger, int count, int code, TimeSpan min, TimeSpan max);

    [LoggerMessage(106, LogLevel.Warning, "Drain finished in {Duration}: {Closed} closed cleanly, {Aborted} aborted after the drain timeout.")]
    public static partial void DrainFinished(ILogger logger, TimeSpan duration, int closed, int aborted);

    [LoggerMessage(107, LogLevel.Warning, "Connection {ConnectionId} sent a message over {MaxMessageSize} bytes; closing with 1009.")]
    public static partial void MessageTooBig(ILogger logger, string connectionId, int maxMessageSize);

    [LoggerMessage(108, LogLevel.Information, "Connection {ConnectionId} idle for {IdleTimeout}; closing with 3008.")]
    public static partial void IdleTimeout(ILogger logger, string connectionId, TimeSpan idleTimeout);

    [LoggerMessage(109, LogLevel.Warning, "Connection {ConnectionId} is a slow consumer ({Detail}); closing it with 4008. Other connections are not affected.")]
    public static partial void SlowConsumer(ILogger logger, string connectionId, string detail);

    [LoggerMessage(110, LogLevel.Warning, "Connection {ConnectionId} is closing while its handler has not read its received messages (its buffer is full: {ReceiveCapacity} messages or {ReceiveCapacityBytes} bytes); a message that did not fit was dropped so the close could complete.")]
    public static partial void MessageDropped(ILogger logger, string connectionId, int receiveCapacity, long receiveCapacityBytes);

    [LoggerMessage(111, LogLevel.Warning, "Upgrade refused ({Reason}) with HTTP {Status}: {MaxRefusalsInFlight} refusals are already in their close handshake.")]
    public static partial void RejectedWithoutUpgrade(ILogger logger, string reason, int status, int maxRefusalsInFlight);

    [LoggerMessage(112, LogLevel.Information, "Connection {ConnectionId} did not answer our Close frame within {SendTimeout}; aborted.")]
    public static partial void CloseNotAnswered(ILogger logger, string connectionId, TimeSpan sendTimeout);
}
