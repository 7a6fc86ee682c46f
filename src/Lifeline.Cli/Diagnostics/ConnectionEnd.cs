namespace Lifeline.Cli.Diagnostics;

/// <summary>How a diagnostic connection ended, told apart as precisely as the wire allows.</summary>
internal enum ConnectionEndKind
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
}

/// <summary>The end of a diagnostic connection.</summary>
internal sealed record ConnectionEnd(ConnectionEndKind Kind, TimeSpan After, int? Code = null, string? Reason = null)
{
    /// <summary>The close code a WebSocket client would report.</summary>
    public int? ObservedCode => Kind switch
    {
        ConnectionEndKind.CloseFrame => Code ?? 1005,
        ConnectionEndKind.StillOpen => null,
        _ => 1006,
    };

    public string Describe() => Kind switch
    {
        ConnectionEndKind.CloseFrame => $"the server sent a Close frame with {Code?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no code (1005)"}" + (string.IsNullOrEmpty(Reason) ? string.Empty : $" \"{Reason}\""),
        ConnectionEndKind.Fin => "the TCP connection was closed (FIN) without a Close frame",
        ConnectionEndKind.Reset => "the TCP connection was reset (RST)",
        ConnectionEndKind.Silent => "the connection went silent: a ping after the silence got no pong",
        _ => "still open",
    };
}
