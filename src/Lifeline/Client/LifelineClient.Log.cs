using Lifeline.CloseCodes;
using Microsoft.Extensions.Logging;

namespace Lifeline.Client;

public sealed partial class LifelineClient
{
    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Connecting to {Uri} (attempt {Attempt}).")]
        public static partial void Connecting(ILogger logger, Uri uri, int attempt);

        [LoggerMessage(2, LogLevel.Information, "Connected to {Uri}.")]
        public static partial void Connected(ILogger logger, Uri uri);

        [LoggerMessage(3, LogLevel.Warning, "Connection lost: {Code} ({Cause}).")]
        public static partial void ConnectionLost(ILogger logger, CloseCode code, string cause);

        [LoggerMessage(4, LogLevel.Warning, "Connection attempt {Attempt} failed: {Cause}.")]
        public static partial void ConnectFailed(ILogger logger, int attempt, string cause);

        [LoggerMessage(5, LogLevel.Information, "Reconnecting in {Delay} (attempt {Attempt}).")]
        public static partial void Reconnecting(ILogger logger, TimeSpan delay, int attempt);

        [LoggerMessage(6, LogLevel.Warning, "Not reconnecting: the reconnect policy stopped after {Cause}.")]
        public static partial void PolicyStopped(ILogger logger, string cause);

        [LoggerMessage(7, LogLevel.Error, "The {Callback} callback threw; the connection carries on.")]
        public static partial void CallbackFailed(ILogger logger, string callback, Exception exception);

        [LoggerMessage(8, LogLevel.Warning, "A queued message was dropped ({Reason}).")]
        public static partial void MessageDropped(ILogger logger, string reason);

        [LoggerMessage(9, LogLevel.Information, "Client closed: {Cause}.")]
        public static partial void Closed(ILogger logger, string cause);

        [LoggerMessage(10, LogLevel.Warning, "A message of more than {MaxMessageSize} bytes arrived; closing with 1009.")]
        public static partial void MessageTooBig(ILogger logger, int maxMessageSize);

        [LoggerMessage(11, LogLevel.Warning, "The {Callback} hook ran past HookTimeout ({Timeout}); the client carried on without it.")]
        public static partial void HookTimedOut(ILogger logger, string callback, TimeSpan timeout);


        [LoggerMessage(12, LogLevel.Information, "Session {SessionId} started.")]
        public static partial void SessionStarted(ILogger logger, Lifeline.Session.SessionId sessionId);

        [LoggerMessage(13, LogLevel.Information, "Session {SessionId} resumed: {ToServer} messages resent, {FromServer} coming from the server.")]
        public static partial void SessionResumed(ILogger logger, Lifeline.Session.SessionId sessionId, long toServer, long fromServer);

        [LoggerMessage(14, LogLevel.Warning, "Session lost: {Detail}.")]
        public static partial void SessionLost(ILogger logger, string detail);

        [LoggerMessage(16, LogLevel.Warning, "Keep-alive: no Pong (nor any other data) within {Timeout} of a Ping; the link is dead, aborting the connection.")]
        public static partial void KeepAliveExpired(ILogger logger, TimeSpan timeout);

        [LoggerMessage(15, LogLevel.Warning, "Closing with {Code}: {Cause}.")]
        public static partial void SessionProtocolError(ILogger logger, CloseCode code, string cause);
    }
}
