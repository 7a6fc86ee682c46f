using Microsoft.Extensions.Logging;

namespace Lifeline.Redis;

public sealed partial class RedisGroupFanout
{
    [LoggerMessage(721, LogLevel.Warning, "Dropped a fan-out message for {Group}: the receive queue is full ({Capacity} messages). The callback is too slow.")]
    private static partial void QueueFull(ILogger logger, string group, int capacity);

    [LoggerMessage(722, LogLevel.Warning, "Dropped a malformed fan-out message.")]
    private static partial void MalformedMessage(ILogger logger);

    [LoggerMessage(723, LogLevel.Error, "The fan-out callback failed for a message to {Group}; the subscription goes on.")]
    private static partial void CallbackFailed(ILogger logger, string group, Exception exception);
}
