namespace Lifeline.Session.Wire;

/// <summary>
/// The client's first frame. <see cref="IsResume"/> false asks for a new session (id, token and last received are then
/// unused); true resumes <see cref="SessionId"/> with <see cref="ResumeToken"/>, stating the last sequence the client
/// received from the server.
/// </summary>
/// <param name="Version">The highest protocol revision the client speaks; 1 for this specification.</param>
/// <param name="IsResume">Resume an existing session (true) or start a new one (false).</param>
/// <param name="SessionId">The session to resume.</param>
/// <param name="ResumeToken">Its secret.</param>
/// <param name="LastReceived">The last sequence the client received from the server and handed to the application (0 if none).</param>
public readonly record struct HelloFrame(int Version, bool IsResume, SessionId SessionId, ResumeToken ResumeToken, long LastReceived)
{
    /// <summary>A Hello asking for a new session.</summary>
    public static HelloFrame NewSession(int version = SessionProtocol.Version) => new(version, false, default, default, 0);

    /// <summary>A Hello resuming a session.</summary>
    public static HelloFrame Resume(SessionId sessionId, ResumeToken resumeToken, long lastReceived, int version = SessionProtocol.Version) =>
        new(version, true, sessionId, resumeToken, lastReceived);
}

/// <summary>The server's answer that starts a new session.</summary>
/// <param name="Version">The protocol revision both sides use: the lower of the client's and the server's.</param>
/// <param name="SessionId">The new session's id.</param>
/// <param name="ResumeToken">The secret the client presents to resume it.</param>
/// <param name="ResumeWindow">How long the server keeps the session after its socket goes (whole milliseconds on the wire).</param>
/// <param name="MaxFrameBytes">The largest frame (whole WebSocket message) the server accepts.</param>
/// <param name="ReplayMaxMessages">The most unacknowledged messages the server holds for the client.</param>
/// <param name="ReplayMaxBytes">The most unacknowledged payload bytes the server holds for the client.</param>
public readonly record struct WelcomeFrame(
    int Version,
    SessionId SessionId,
    ResumeToken ResumeToken,
    TimeSpan ResumeWindow,
    int MaxFrameBytes,
    int ReplayMaxMessages,
    long ReplayMaxBytes);

/// <summary>The server's answer to a successful resume.</summary>
/// <param name="LastReceived">The last sequence the server received from the client; the client resends everything after it.</param>
/// <param name="ReplayCount">How many Data frames the server resends right after this frame.</param>
public readonly record struct ResumedFrame(long LastReceived, long ReplayCount);

/// <summary>The session cannot continue losslessly; what was lost.</summary>
/// <param name="Reason">Why.</param>
/// <param name="LastReceived">The last sequence the sender received from the peer (0 when it has no record): the peer's sends after it are lost.</param>
/// <param name="Lost">The sender's own messages that will never be delivered (empty when it has no record).</param>
public readonly record struct SessionLostFrame(SessionLostReason Reason, long LastReceived, SequenceRange Lost);
