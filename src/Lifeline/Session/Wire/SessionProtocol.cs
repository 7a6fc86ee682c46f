using Lifeline.CloseCodes;

namespace Lifeline.Session.Wire;

/// <summary>Constants of the <c>lifeline.v1</c> WebSocket subprotocol (docs/protocol.md, "Sessions").</summary>
public static class SessionProtocol
{
    /// <summary>The subprotocol name a client offers in Sec-WebSocket-Protocol to use sessions.</summary>
    public const string SubProtocol = "lifeline.v1";

    /// <summary>The protocol revision this library speaks.</summary>
    public const int Version = 1;

    /// <summary>The default time a server keeps a session after its socket goes: 2 minutes.</summary>
    public static readonly TimeSpan DefaultResumeWindow = TimeSpan.FromMinutes(2);

    /// <summary>4000: the client did not send Hello in time (the server's handshake timeout). Reconnect with backoff.</summary>
    public static CloseCode HandshakeTimeout => new(4000);

    /// <summary>
    /// 4001: this socket no longer carries the session (resumed on a newer connection, served by another node now, or lost
    /// by the store). A client that still holds the session reconnects with backoff and resumes; it is answered Resumed or
    /// SessionLost.
    /// </summary>
    public static CloseCode SessionTakenOver => new(4001);

    /// <summary>The one close reason (with 1008) for every refused resume, so the answer reveals nothing about the session.</summary>
    public const string RefusedReason = "session refused";

    /// <summary>The default time a server waits for the client's Hello: 10 seconds.</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);
}
