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
    /// between the longest survivor and the shortest victim. Null when not found, and when such a cut ended even the
    /// shortest silence tried (<see cref="IdleScanOptions.MinSilence"/>): the timeout is then at most
    /// <see cref="ShortestKilled"/>, and a scan with a lower minimum can time it.
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

    /// <summary>
    /// Messages (data frames) the server sent during the silences: when above zero the path was not idle, and a cut of
    /// idle connections could not show (scan an endpoint that stays quiet until spoken to).
    /// </summary>
    public int ServerMessages { get; internal init; }

    /// <summary>The scan was cancelled before it finished: the figures are what it measured so far.</summary>
    public bool Interrupted { get; internal set; }

    /// <summary>Time the scan took.</summary>
    public TimeSpan Elapsed { get; internal set; }

    /// <summary>
    /// How the connection the scan kept busy (a ping every <see cref="BusyPingInterval"/>) was cut during the scan, once it
    /// had answered its first pings; <see cref="ConnectionEnd.After"/> is its age then (for a silent cut, when it was
    /// declared: pongs missing for two pong timeouts and an interval). Null when it lived through the scan, or never opened or counted.
    /// </summary>
    public ConnectionEnd? BusyConnectionEnd { get; private set; }

    /// <summary>How often the scan pinged its busy connection: a quarter of the shortest silence, between 50 ms and 1 s.</summary>
    public TimeSpan BusyPingInterval { get; private set; }

    /// <summary>How long the busy connection was watched open (to its cut, its close, or the scan's end); null when it never opened.</summary>
    public TimeSpan? BusyConnectionWatched { get; private set; }

    /// <summary>The busy connection could not be opened, or ended before it had answered its first pings (the server refused it, or cut it sooner than its ping interval): it tells nothing.</summary>
    public bool BusyConnectionNotHeld { get; private set; }

    /// <summary>The busy connection was closed early to make room: one of the scan's own connections found none (a server, or a limit on the path, that holds few connections).</summary>
    public bool BusyConnectionGaveWay { get; private set; }

    /// <summary>
    /// The cut found is not one that pings prevent: the busy connection, pinged all along, was cut too, the same way and at
    /// the same age as the silent ones (within <see cref="LifetimeTolerance"/>; for a cut found by a ping, within the range the silences left).
    /// The path ends connections a fixed time after they open, whatever their traffic (a maximum connection lifetime, a
    /// timeout counted from the start, or an idle clock that WebSocket pings do not reset), so keep-alive pings will not
    /// prevent it. Never claimed when the cut came sooner than two ping intervals.
    /// </summary>
    public bool CutDespiteTraffic
    {
        get
        {
            if (!Found || BusyConnectionEnd is not { } busy || ShortestKilled is not { } killed || killed <= BusyPingInterval * 2)
            {
                return false;
            }

            // Cut the same way as the silent ones: a Close frame with the same code, or both at the TCP level (a FIN, a
            // reset or silence, which the busy connection's own pings may turn into one another). A server's eviction
            // with another code, or a refusal, is not their cut.
            if ((busy.Kind == ConnectionEndKind.CloseFrame) != (KilledBy == ConnectionEndKind.CloseFrame) || busy.CloseCode != CloseCode)
            {
                return false;
            }

            // For a silent cut of the busy connection, it came between its last pong and the moment it was declared.
            var earliest = busy.Kind == ConnectionEndKind.Silent ? BusyLastAlive : busy.After;
            var timed = !CutOnNextPacket && KilledBy != ConnectionEndKind.Silent;
            var lowest = timed ? killed - LifetimeTolerance : LongestSurvived ?? TimeSpan.Zero;
            return earliest <= killed + LifetimeTolerance && busy.After >= lowest;
        }
    }

    /// <summary>How far apart the busy connection's cut and the silent ones' may be and still be the same lifetime.</summary>
    internal static TimeSpan LifetimeTolerance { get; } = TimeSpan.FromSeconds(2);

    /// <summary>The busy connection's age when its last pong arrived.</summary>
    internal TimeSpan BusyLastAlive { get; private set; }

    /// <summary>
    /// Why the scan could not run or could not go on (the endpoint could not be reached or refused an upgrade; or, stage
    /// <see cref="ProbeStage.Ping"/>, before anything was measured its connections were ended at once or got no pong to a
    /// first ping); null when it ran to the end. When <see cref="Connections"/> is above zero the figures are what it
    /// measured before that.
    /// </summary>
    public ConnectionFailure? Failure { get; internal init; }

    /// <summary>This result with what the busy connection saw, once it was stopped; and the time the scan took in all.</summary>
    internal IdleScanResult WithBusyConnection(BusyConnectionWatch busy, bool interrupted, TimeSpan elapsed)
    {
        var copy = (IdleScanResult)MemberwiseClone();
        copy.BusyConnectionEnd = busy.Cut;
        copy.BusyPingInterval = busy.Interval;
        copy.BusyConnectionWatched = busy.Watched;
        copy.BusyConnectionGaveWay = busy.GaveWay;
        copy.BusyConnectionNotHeld = busy.NotHeld;
        copy.BusyLastAlive = busy.LastAlive;
        copy.Interrupted |= interrupted;
        copy.Elapsed = elapsed;
        return copy;
    }
}
