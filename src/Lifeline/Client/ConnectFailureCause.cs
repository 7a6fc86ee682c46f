namespace Lifeline.Client;

/// <summary>Why a connection attempt failed, as a value a program can switch on; <see cref="ConnectFailure.Description"/> has the words.</summary>
public enum ConnectFailureCause
{
    /// <summary>Nothing listens at the address (TCP connection refused).</summary>
    Refused,

    /// <summary>The host name did not resolve.</summary>
    HostNotFound,

    /// <summary>The attempt took longer than the connect timeout.</summary>
    Timeout,

    /// <summary>The TLS handshake failed (certificate, protocol).</summary>
    TlsFailed,

    /// <summary>The server answered the upgrade with an HTTP status other than 101.</summary>
    UpgradeRejected,

    /// <summary>Another socket error.</summary>
    SocketError,

    /// <summary>Anything else, including a <see cref="LifelineClientOptions.BeforeConnect"/> hook that threw.</summary>
    Other,
}
