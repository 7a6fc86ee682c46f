namespace Lifeline.Diagnostics.Probe;

/// <summary>A step of opening and watching a diagnostic WebSocket connection.</summary>
public enum ProbeStage
{
    /// <summary>Resolving the host name to addresses.</summary>
    Dns,

    /// <summary>Opening the TCP connection.</summary>
    Tcp,

    /// <summary>The TLS handshake (wss:// only).</summary>
    Tls,

    /// <summary>The HTTP upgrade request and its response.</summary>
    Upgrade,

    /// <summary>A timed ping round trip on the open connection (the idle scan's first ping, before a silence, too).</summary>
    Ping,

    /// <summary>Watching the open connection, sending nothing, until it ends or the watch is over.</summary>
    Watch,
}
