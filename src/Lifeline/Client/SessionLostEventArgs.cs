using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.Client;

/// <summary>
/// A session could not continue losslessly (<see cref="LifelineClient.SessionLost"/>). Says what was lost in each
/// direction. A new session, if one follows (see <see cref="LifelineClient.SessionLost"/>), numbers from 1 again.
/// </summary>
public sealed class SessionLostEventArgs : EventArgs
{
    internal SessionLostEventArgs(SessionId sessionId, SessionLostReason reason, bool refused, bool lostByServer, long serverLastReceived,
        SequenceRange lostFromServer, SequenceRange unconfirmedToServer, DateTimeOffset timestamp)
    {
        SessionId = sessionId;
        Reason = reason;
        Refused = refused;
        LostByServer = lostByServer;
        ServerLastReceived = serverLastReceived;
        LostFromServer = lostFromServer;
        UnconfirmedToServer = unconfirmedToServer;
        Timestamp = timestamp;
    }

    /// <summary>The session that was lost.</summary>
    public SessionId SessionId { get; }

    /// <summary>Why (the SessionLost frame's reason, or the client's own when it ended the session).</summary>
    public SessionLostReason Reason { get; }

    /// <summary>True when the server refused the resume with 1008 (wrong token or another user's session).</summary>
    public bool Refused { get; }

    /// <summary>True when the server said so (a SessionLost frame or a refusal); false when the client ended the session itself.</summary>
    public bool LostByServer { get; }

    /// <summary>The last of the client's messages the server says it handed to its application (0 when it has no record).</summary>
    public long ServerLastReceived { get; }

    /// <summary>The server's messages that will never arrive (empty when the server has no record of them).</summary>
    public SequenceRange LostFromServer { get; }

    /// <summary>
    /// The client's messages that were sent but never confirmed: the server may or may not have handled them. When it
    /// states its last received (<see cref="ServerLastReceived"/>), only those after it, which never reached its application.
    /// </summary>
    public SequenceRange UnconfirmedToServer { get; }

    /// <summary>When the loss was noticed, from the client's TimeProvider.</summary>
    public DateTimeOffset Timestamp { get; }

    /// <inheritdoc />
    public override string ToString() =>
        $"session {SessionId} lost ({(Refused ? "refused" : Reason.ToString())}): from server {LostFromServer}, unconfirmed to server {UnconfirmedToServer}";
}
