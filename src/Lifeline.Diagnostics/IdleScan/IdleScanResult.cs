using Lifeline.Diagnostics.Probe;

namespace Lifeline.Diagnostics.IdleScan;

/// <summary>What an idle scan found.</summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed class IdleScanResult
{
    internal IdleScanResult()
    {
    }

    /// <summary>True when some silence was cut: <see cref="IdleTimeout"/> holds the estimate.</summary>
    public bool Found { get; internal init; }

    /// <summary>
    /// The best estimate of the idle timeout: the moment a visible cut (FIN, RST, Close frame) arrived during a silence,
    /// or otherwise (a silent drop, or a cut that showed only in answer to the next packet) the middle of the range
    /// between the longest survivor and the shortest victim. Null when not found.
    /// </summary>
    public TimeSpan? IdleTimeout { get; internal init; }

    /// <summary>The longest silence a connection lived through; null when none did.</summary>
    public TimeSpan? LongestSurvived { get; internal init; }

    /// <summary>The shortest silence that was cut (the moment of the cut when it was visible); null when none was.</summary>
    public TimeSpan? ShortestKilled { get; internal init; }

    /// <summary>How the path cuts idle connections; null when no cut was seen.</summary>
    public ConnectionEndKind? KilledBy { get; internal init; }

    /// <summary>
    /// The cut (<see cref="KilledBy"/>: a reset, FIN or Close frame) came only in answer to the first packet after the
    /// silence: the path had forgotten the connection without a word, as a stateful firewall or NAT does, so a client
    /// learns of it only when it next sends.
    /// </summary>
    public bool CutOnNextPacket { get; internal init; }

    /// <summary>The code of the Close frame that cut the connection, when <see cref="KilledBy"/> is <see cref="ConnectionEndKind.CloseFrame"/>.</summary>
    public int? CloseCode { get; internal init; }

    /// <summary>The reason that came with the cut, if any.</summary>
    public string? CloseReason { get; internal init; }

    /// <summary>The longest silence the scan would try (<see cref="IdleScanOptions.MaxSilence"/>).</summary>
    public TimeSpan MaxSilence { get; internal init; }

    /// <summary>Rounds run.</summary>
    public int Rounds { get; internal init; }

    /// <summary>Connections opened.</summary>
    public int Connections { get; internal init; }

    /// <summary>Pings the server sent during the silences: when above zero the path was not fully idle.</summary>
    public int ServerPings { get; internal init; }

    /// <summary>The scan was cancelled before it finished: the figures are what it measured so far.</summary>
    public bool Interrupted { get; internal init; }

    /// <summary>Time the scan took.</summary>
    public TimeSpan Elapsed { get; internal init; }

    /// <summary>
    /// How the connection the scan kept busy (a ping every <see cref="BusyPingInterval"/>) ended, when something cut it
    /// during the scan; <see cref="ConnectionEnd.After"/> is its age then. Null when it lived through the scan.
    /// </summary>
    public ConnectionEnd? BusyConnectionEnd { get; private set; }

    /// <summary>How often the scan pinged its busy connection: a quarter of the shortest silence, between 50 ms and 1 s.</summary>
    public TimeSpan BusyPingInterval { get; private set; }

    /// <summary>
    /// The cut found is not about idleness: the busy connection was cut too, no later than the silent ones (a quarter
    /// and a second of margin). The path ends connections after a fixed time whatever their traffic (a maximum
    /// connection lifetime, or a timeout counted from the start), so keep-alive pings will not prevent it.
    /// </summary>
    public bool CutDespiteTraffic => Found && BusyConnectionEnd is { } busy && ShortestKilled is { } killed &&
        busy.After <= killed + killed / 4 + TimeSpan.FromSeconds(1);

    /// <summary>
    /// Why the scan could not run or could not go on (the endpoint could not be reached or refused an upgrade; or, stage
    /// <see cref="ProbeStage.Ping"/>, before anything was measured its connections were ended at once or got no pong to a
    /// first ping); null when it ran to the end. When <see cref="Connections"/> is above zero the figures are what it
    /// measured before that.
    /// </summary>
    public ConnectionFailure? Failure { get; internal init; }

    /// <summary>This result with what the busy connection saw.</summary>
    internal IdleScanResult WithBusyConnection(ConnectionEnd? end, TimeSpan pingInterval)
    {
        var copy = (IdleScanResult)MemberwiseClone();
        copy.BusyConnectionEnd = end;
        copy.BusyPingInterval = pingInterval;
        return copy;
    }
}
