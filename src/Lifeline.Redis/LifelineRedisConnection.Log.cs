using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Lifeline.Redis;

public sealed partial class LifelineRedisConnection
{
    [LoggerMessage(701, LogLevel.Warning, "Redis operation {Operation} failed ({Kind}) after {ElapsedMs} ms: {Detail}. It raised SessionStoreUnavailableException; the connection keeps retrying.")]
    private static partial void OperationFailed(ILogger logger, string operation, string kind, long elapsedMs, string detail);

    [LoggerMessage(702, LogLevel.Warning, "Lost the Redis connection to {Endpoint} ({FailureType}): {Detail}. Reconnecting in the background.")]
    private static partial void ConnectionLost(ILogger logger, string endpoint, ConnectionFailureType failureType, string? detail);

    [LoggerMessage(703, LogLevel.Information, "Redis connection to {Endpoint} restored.")]
    private static partial void ConnectionRestored(ILogger logger, string endpoint);

    [LoggerMessage(704, LogLevel.Warning, "Redis ({Configuration}) is not reachable at start. Operations fail until it is; reconnecting in the background.")]
    private static partial void NotConnectedAtStart(ILogger logger, string configuration);
}
