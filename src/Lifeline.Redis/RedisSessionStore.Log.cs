using Lifeline.Session;
using Microsoft.Extensions.Logging;

namespace Lifeline.Redis;

public sealed partial class RedisSessionStore
{
    [LoggerMessage(711, LogLevel.Warning, "Refused a write for session {SessionId} from node {NodeId} (epoch {Epoch}): the current owner's epoch is {CurrentEpoch}.")]
    private static partial void WriteFenced(ILogger logger, SessionId sessionId, string nodeId, long epoch, string currentEpoch);

    [LoggerMessage(712, LogLevel.Warning, "The Redis snapshot of session {SessionId} is unreadable ({Detail}); treating the session as not found.")]
    private static partial void UnreadableSnapshot(ILogger logger, SessionId sessionId, string detail);
}
