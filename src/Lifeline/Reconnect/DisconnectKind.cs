namespace Lifeline.Reconnect;

/// <summary>How the previous connection or attempt ended.</summary>
public enum DisconnectKind
{
    /// <summary>An open connection ended (with a Close frame, or without one: then the code is 1006).</summary>
    ConnectionClosed,

    /// <summary>The server answered the upgrade with an HTTP status other than 101.</summary>
    HandshakeRejected,

    /// <summary>No connection could be made: refused, DNS failure, TLS failure, timeout.</summary>
    ConnectFailed,
}
