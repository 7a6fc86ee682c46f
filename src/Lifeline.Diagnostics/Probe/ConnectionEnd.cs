using System.Globalization;

namespace Lifeline.Diagnostics.Probe;

/// <summary>How a diagnostic connection ended, told apart as precisely as the wire allows.</summary>
public enum ConnectionEndKind
{
    /// <summary>The server sent a Close frame (code and reason known).</summary>
    CloseFrame,

    /// <summary>The TCP connection was closed (FIN) without a Close frame: seen by clients as 1006.</summary>
    Fin,

    /// <summary>The TCP connection was reset (RST): seen by clients as 1006.</summary>
    Reset,

    /// <summary>Nothing arrived, and a ping after the silence got no pong: a silent drop, seen by clients as 1006 only once keep-alive notices.</summary>
    Silent,

    /// <summary>Still open when the observation ended.</summary>
    StillOpen,

    /// <summary>
    /// The server broke the framing rules (or sent a frame larger than accepted); the diagnostics closed the
    /// connection with 1002 Protocol Error (or 1009 Message Too Big), as a client would.
    /// </summary>
    ProtocolError,
}

/// <summary>The end of a diagnostic connection.</summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed class ConnectionEnd
{
    internal ConnectionEnd(ConnectionEndKind kind, TimeSpan after, int? closeCode = null, string? closeReason = null)
    {
        Kind = kind;
        After = after;
        CloseCode = closeCode;
        CloseReason = closeReason;
    }

    /// <summary>How it ended.</summary>
    public ConnectionEndKind Kind { get; }

    /// <summary>How long after the connection opened it ended.</summary>
    public TimeSpan After { get; }

    /// <summary>
    /// For <see cref="ConnectionEndKind.CloseFrame"/>: the code in the server's Close frame (null when it carried none).
    /// For <see cref="ConnectionEndKind.ProtocolError"/>: the code the diagnostics closed with (1002, 1007 or 1009). Otherwise null.
    /// </summary>
    public int? CloseCode { get; }

    /// <summary>The reason in the server's Close frame, or what rule the server broke; otherwise null.</summary>
    public string? CloseReason { get; }

    /// <summary>The close code a WebSocket client would report: 1005 for a Close frame without a code, 1006 for a lost connection, null while still open.</summary>
    public int? ObservedCode => Kind switch
    {
        ConnectionEndKind.CloseFrame => CloseCode ?? 1005,
        ConnectionEndKind.ProtocolError => CloseCode ?? 1002,
        ConnectionEndKind.StillOpen => null,
        _ => 1006,
    };

    /// <summary>The end in an English sentence.</summary>
    public string Describe() => Kind switch
    {
        ConnectionEndKind.CloseFrame => $"the server sent a Close frame with {CloseCode?.ToString(CultureInfo.InvariantCulture) ?? "no code (1005)"}" + (string.IsNullOrEmpty(CloseReason) ? string.Empty : $" \"{CloseReason}\""),
        ConnectionEndKind.Fin => "the TCP connection was closed (FIN) without a Close frame",
        ConnectionEndKind.Reset => "the TCP connection was reset (RST)",
        ConnectionEndKind.Silent => "the connection went silent: a ping after the silence got no pong",
        ConnectionEndKind.ProtocolError => string.Create(CultureInfo.InvariantCulture, $"the server broke the WebSocket protocol ({CloseReason}); closed with {ObservedCode}"),
        _ => "still open",
    };

    /// <inheritdoc />
    public override string ToString() => Describe();
}
