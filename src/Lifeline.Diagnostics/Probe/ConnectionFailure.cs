namespace Lifeline.Diagnostics.Probe;

/// <summary>Why a diagnostic connection could not be opened, as a value to branch on.</summary>
public enum ConnectionFailureReason
{
    /// <summary>A cause not named by another value; see <see cref="ConnectionFailure.Message"/>.</summary>
    Other,

    /// <summary>No answer within the connect timeout (a firewall dropping packets, or an unreachable host).</summary>
    TimedOut,

    /// <summary>The caller cancelled the attempt.</summary>
    Canceled,

    /// <summary>The host name does not resolve, or resolves to no address.</summary>
    NameNotResolved,

    /// <summary>Nothing listens on the port (the TCP connection was refused).</summary>
    ConnectionRefused,

    /// <summary>The host or its network is unreachable.</summary>
    Unreachable,

    /// <summary>The TLS handshake failed (certificate, protocol version, or not a TLS server).</summary>
    TlsFailed,

    /// <summary>The server reset the connection during the upgrade.</summary>
    ConnectionReset,

    /// <summary>The server closed the connection without answering the upgrade.</summary>
    ClosedWithoutAnswer,

    /// <summary>The answer was not a readable HTTP response.</summary>
    InvalidResponse,

    /// <summary>The server answered with a status other than 101; see <see cref="ConnectionFailure.Response"/>.</summary>
    UpgradeRefused,

    /// <summary>The server answered 101 with a wrong Sec-WebSocket-Accept: not a conforming WebSocket server.</summary>
    InvalidAcceptKey,

    /// <summary>The server answered 101 with a subprotocol the client did not offer: clients (ClientWebSocket, browsers) fail such a connection.</summary>
    UnrequestedSubProtocol,

    /// <summary>
    /// The connection opened, but the server (or something on the path) ended it at once, before answering a first ping:
    /// it does not keep the connection open at all (a missing token, a full server). See <see cref="ConnectionFailure.End"/>.
    /// </summary>
    EndedAtOnce,

    /// <summary>The connection opened and stayed open, but a first ping got no pong within the pong timeout.</summary>
    NoPong,
}

/// <summary>Where and why a diagnostic connection could not be opened, or (idle scan) was not held open.</summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed class ConnectionFailure
{
    internal ConnectionFailure(ProbeStage stage, ConnectionFailureReason reason, string message, UpgradeResponse? response = null, ConnectionEnd? end = null)
    {
        Stage = stage;
        Reason = reason;
        Message = message;
        Response = response;
        End = end;
    }

    /// <summary>The step that failed: <see cref="ProbeStage.Dns"/>, <see cref="ProbeStage.Tcp"/>, <see cref="ProbeStage.Tls"/> or <see cref="ProbeStage.Upgrade"/>; for an idle scan also <see cref="ProbeStage.Ping"/> (the connection opened but was not held).</summary>
    public ProbeStage Stage { get; }

    /// <summary>The cause, to branch on.</summary>
    public ConnectionFailureReason Reason { get; }

    /// <summary>The cause in an English sentence, with what usually leads to it.</summary>
    public string Message { get; }

    /// <summary>The server's HTTP answer when it answered the upgrade but did not accept it; otherwise null.</summary>
    public UpgradeResponse? Response { get; }

    /// <summary>How the open connection ended, for <see cref="ConnectionFailureReason.EndedAtOnce"/>; otherwise null.</summary>
    public ConnectionEnd? End { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Stage}: {Message}";
}
