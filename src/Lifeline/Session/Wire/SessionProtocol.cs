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
}
