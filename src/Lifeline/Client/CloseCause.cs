namespace Lifeline.Client;

/// <summary>Why a connection ended, as a value a program can switch on; <see cref="CloseRecord.Description"/> has the words.</summary>
public enum CloseCause
{
    /// <summary>The server sent a Close frame.</summary>
    ServerClosed,

    /// <summary>The application stopped the client (StopAsync or DisposeAsync).</summary>
    StoppedByApplication,

    /// <summary>The application stopped the client before it ever connected.</summary>
    StoppedBeforeStart,

    /// <summary>The application stopped the client and the server did not answer its Close frame in time.</summary>
    CloseNotAnswered,

    /// <summary>The link was lost without a Close frame (1006): a reset, a FIN, a crashed peer.</summary>
    ConnectionLost,

    /// <summary>No Pong arrived within the keep-alive timeout: a dead link found by ping/pong (1006).</summary>
    KeepAliveTimeout,

    /// <summary>No message arrived within the receive watchdog's period (1006).</summary>
    ReceiveWatchdog,

    /// <summary>A received message was larger than the maximum size; the client closed with 1009.</summary>
    MessageTooBig,

    /// <summary>The server broke the WebSocket or session protocol; the client failed the connection (1002, 1003, 1007).</summary>
    ProtocolViolation,

    /// <summary>
    /// The session could not go on over this connection (no answer to the handshake, or the server or the client ended the
    /// session). The code is 1006, so the client connects again as after a lost link, even when Close frames were exchanged.
    /// </summary>
    SessionInterrupted,
}
