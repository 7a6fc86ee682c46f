using Lifeline.Session;
using Microsoft.Extensions.Logging;

namespace Lifeline.AspNetCore;

/// <summary>Log messages of session endpoints, with fixed event ids (300-349).</summary>
internal static partial class SessionLog
{
    [LoggerMessage(301, LogLevel.Debug, "Session {SessionId} started on connection {ConnectionId}.")]
    public static partial void Started(ILogger logger, SessionId sessionId, string connectionId);

    [LoggerMessage(302, LogLevel.Information, "Session {SessionId} resumed on connection {ConnectionId}: {Replayed} messages resent{Restored}.")]
    public static partial void Resumed(ILogger logger, SessionId sessionId, string connectionId, long replayed, string restored);

    [LoggerMessage(303, LogLevel.Warning, "Session {SessionId} lost ({Reason}).")]
    public static partial void Lost(ILogger logger, SessionId sessionId, string reason);

    [LoggerMessage(304, LogLevel.Warning, "Connection {ConnectionId}: closing with {Code}: {Cause}. Other sessions are not affected.")]
    public static partial void ProtocolError(ILogger logger, string connectionId, int code, string cause);

    [LoggerMessage(305, LogLevel.Warning, "Connection {ConnectionId}: resume of a session refused with 1008 ({Why}).")]
    public static partial void Refused(ILogger logger, string connectionId, string why);

    [LoggerMessage(306, LogLevel.Information, "Connection {ConnectionId}: resume of unknown or expired session {SessionId}; answered SessionLost.")]
    public static partial void NotFound(ILogger logger, string connectionId, SessionId sessionId);

    [LoggerMessage(307, LogLevel.Error, "The handler of session {SessionId} threw; the session ends and its connection is closed with 1011 (1013 with a retry hint when the session store did not confirm a send in time).")]
    public static partial void HandlerFailed(ILogger logger, SessionId sessionId, Exception exception);

    [LoggerMessage(308, LogLevel.Information, "Drain: {Count} sessions saved to {Path}.")]
    public static partial void Saved(ILogger logger, int count, string path);

    [LoggerMessage(309, LogLevel.Error, "Drain: saving sessions failed; they will be answered SessionLost after the restart.")]
    public static partial void SaveFailed(ILogger logger, Exception exception);

    [LoggerMessage(319, LogLevel.Error, "Drain: {Failed} of {Total} sessions could not be saved and will be answered SessionLost after the restart; the others are saved. First failure: session {SessionId}.")]
    public static partial void SomeNotSaved(ILogger logger, int failed, int total, SessionId sessionId, Exception exception);

    [LoggerMessage(320, LogLevel.Warning, "Session {SessionId}: a group send or broadcast found its replay buffer full for {Bound} (the client does not acknowledge); the session is lost so that it does not hold up the other members.")]
    public static partial void SlowMember(ILogger logger, SessionId sessionId, TimeSpan bound);

    [LoggerMessage(310, LogLevel.Information, "Session {SessionId} taken over by a newer connection; closing the old one with 4001.")]
    public static partial void TakenOver(ILogger logger, SessionId sessionId);

    [LoggerMessage(311, LogLevel.Warning, "Session {SessionId} is served by another node now ({Why}); stopped here and closed its socket with 4001.")]
    public static partial void Fenced(ILogger logger, SessionId sessionId, string why);

    [LoggerMessage(312, LogLevel.Warning, "Session {SessionId}: the session store (Redis) is unavailable ({Error}); sends and acks wait, retrying.")]
    public static partial void StoreWriteFailed(ILogger logger, SessionId sessionId, string error);

    [LoggerMessage(313, LogLevel.Information, "Session {SessionId}: the session store is reachable again; queued sends and acks go out.")]
    public static partial void StoreRecovered(ILogger logger, SessionId sessionId);

    [LoggerMessage(314, LogLevel.Warning, "Connection {ConnectionId}: the session store (Redis) is unavailable ({Error}); closing with 1013, the session stays resumable.")]
    public static partial void StoreUnavailableOnOpen(ILogger logger, string connectionId, string error);

    [LoggerMessage(315, LogLevel.Warning, "Drain: the final commit of session {SessionId} did not complete ({Error}); what was sent or acknowledged is stored already.")]
    public static partial void StoreDrainIncomplete(ILogger logger, SessionId sessionId, string error);

    [LoggerMessage(316, LogLevel.Warning, "Group fan-out: subscribing failed ({Error}); retrying.")]
    public static partial void FanoutSubscribeFailed(ILogger logger, string error);

    [LoggerMessage(317, LogLevel.Information, "Group fan-out: subscribed; group sends of other nodes reach this node's sessions.")]
    public static partial void FanoutSubscribed(ILogger logger);

    [LoggerMessage(318, LogLevel.Warning, "Drain: {Count} session handler(s) had not finished the message they hold within {Bound}; those messages are not counted as delivered, so their clients resend them to the next process.")]
    public static partial void HandlersStillBusy(ILogger logger, int count, TimeSpan bound);

    [LoggerMessage(321, LogLevel.Warning, "Session {SessionId} ended, but the session store could not remove it ({Error}); its keys expire with their TTL, and a resume before then continues it.")]
    public static partial void StoreEndFailed(ILogger logger, SessionId sessionId, string error);

    [LoggerMessage(322, LogLevel.Warning, "Session {SessionId}: its replay buffer is full (mode Fail) for a group send or broadcast; the session is lost (buffer full) rather than miss the message unseen.")]
    public static partial void FullMember(ILogger logger, SessionId sessionId);

    [LoggerMessage(323, LogLevel.Warning, "Session {SessionId}: {Count} group messages from other nodes ({Bytes} bytes) wait behind its earlier ones (its replay buffer or its socket is full), as many as its replay buffer holds; the session is lost (buffer full) rather than let them pile up.")]
    public static partial void FanoutBacklog(ILogger logger, SessionId sessionId, int count, long bytes);

    [LoggerMessage(325, LogLevel.Error, "Session {SessionId}: a callback registered on its handler's token threw when the session ended; the session ended all the same.")]
    public static partial void EndingCallbackFailed(ILogger logger, SessionId sessionId, Exception exception);

    [LoggerMessage(324, LogLevel.Error, "Session {SessionId}: a group message from another node could not be handed to it; the session is lost (buffer full) rather than miss it unseen.")]
    public static partial void FanoutSendFailed(ILogger logger, SessionId sessionId, Exception exception);

    [LoggerMessage(326, LogLevel.Information, "Connection {ConnectionId}: new session refused with 1013, as {MaxSessions} sessions are held (MaxSessions); resumes are still served.")]
    public static partial void SessionsFull(ILogger logger, string connectionId, int maxSessions);
}
