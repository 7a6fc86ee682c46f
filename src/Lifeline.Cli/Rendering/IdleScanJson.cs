using System.Globalization;
using Lifeline.CloseCodes;
using Lifeline.Diagnostics.IdleScan;
using Lifeline.Diagnostics.Probe;
using WireCloseCode = Lifeline.CloseCodes.CloseCode; // IdleScanReport has a CloseCode property

namespace Lifeline.Cli.Rendering;

/// <summary>What <c>lifeline idle-scan</c> found, in the shape of its JSON output (times in seconds).</summary>
internal sealed record IdleScanReport
{
    public required bool Found { get; init; }

    /// <summary>The best estimate of the idle timeout.</summary>
    public double? IdleTimeoutSeconds { get; init; }

    public double? LongestSurvivedSeconds { get; init; }

    public double? ShortestKilledSeconds { get; init; }

    /// <summary>reset, fin, close-frame or silent.</summary>
    public string? KilledBy { get; init; }

    /// <summary>The cut showed only in answer to the first packet after the silence (the path had forgotten the connection silently).</summary>
    public bool CutOnNextPacket { get; init; }

    /// <summary>The cut is not one pings prevent: the connection the scan kept busy was cut too, the same way and at the same age (a lifetime limit, or an idle clock that counts only messages).</summary>
    public bool CutDespiteTraffic { get; init; }

    /// <summary>The age of the busy connection when something cut it; null when it lived through the scan.</summary>
    public double? BusyConnectionCutAfterSeconds { get; init; }

    /// <summary>How the busy connection was cut (reset, fin, close-frame or silent); null when it was not.</summary>
    public string? BusyConnectionKilledBy { get; init; }

    /// <summary>How often the scan pinged its busy connection.</summary>
    public double BusyPingSeconds { get; init; }

    /// <summary>How long the busy connection was watched open; null when it never opened.</summary>
    public double? BusyConnectionWatchedSeconds { get; init; }

    /// <summary>The busy connection was closed early to make room for one of the scan's own connections.</summary>
    public bool BusyConnectionGaveWay { get; init; }

    /// <summary>The busy connection could not be opened, or ended before it answered its first pings: it tells nothing.</summary>
    public bool BusyConnectionNotHeld { get; init; }

    public int? CloseCode { get; init; }

    public string? CloseReason { get; init; }

    public double MaxSeconds { get; init; }

    public int Rounds { get; init; }

    public int Connections { get; init; }

    public int ServerPings { get; init; }

    public int ServerMessages { get; init; }

    /// <summary>The scan was stopped (Ctrl-C, SIGTERM) before it finished: the figures are what it measured so far.</summary>
    public bool Interrupted { get; init; }

    public double ElapsedSeconds { get; init; }

    /// <summary>Why the scan stopped early (a connection could not be opened, or was not held open); the figures are what it measured before.</summary>
    public string? Failure { get; init; }

    /// <summary>Where it failed, as <c>lifeline probe</c> names it: dns, tcp, tls, upgrade, or ping (opened, but ended at once or no pong).</summary>
    public string? FailedStage { get; init; }

    public required string Advice { get; init; }

    public static IdleScanReport From(IdleScanResult scan) => new()
    {
        Found = scan.Found,
        IdleTimeoutSeconds = scan.IdleTimeout?.TotalSeconds,
        LongestSurvivedSeconds = scan.LongestSurvived?.TotalSeconds,
        ShortestKilledSeconds = scan.ShortestKilled?.TotalSeconds,
        KilledBy = scan.KilledBy is { } kind ? EndReport.KindName(kind) : null,
        CutOnNextPacket = scan.CutOnNextPacket,
        CutDespiteTraffic = scan.CutDespiteTraffic,
        BusyConnectionCutAfterSeconds = scan.BusyConnectionEnd is { } busy ? Math.Round(busy.After.TotalSeconds, 3) : null,
        BusyConnectionKilledBy = scan.BusyConnectionEnd is { } busyEnd ? EndReport.KindName(busyEnd.Kind) : null,
        BusyPingSeconds = scan.BusyPingInterval.TotalSeconds,
        BusyConnectionWatchedSeconds = scan.BusyConnectionWatched is { } watched ? Math.Round(watched.TotalSeconds, 3) : null,
        BusyConnectionGaveWay = scan.BusyConnectionGaveWay,
        BusyConnectionNotHeld = scan.BusyConnectionNotHeld,
        CloseCode = scan.CloseCode,
        CloseReason = scan.CloseReason,
        MaxSeconds = scan.MaxSilence.TotalSeconds,
        Rounds = scan.Rounds,
        Connections = scan.Connections,
        ServerPings = scan.ServerPings,
        ServerMessages = scan.ServerMessages,
        Interrupted = scan.Interrupted,
        ElapsedSeconds = Math.Round(scan.Elapsed.TotalSeconds, 3),
        Failure = scan.Failure?.Message,
        FailedStage = scan.Failure is { } failed ? failed.Stage.ToString().ToLowerInvariant() : null,
        Advice = AdviceFor(scan),
    };

    /// <summary>
    /// The keep-alive interval to advise: half the timeout, in whole seconds from 2 s up. (It was never below 0.5 s
    /// before, which advised pings every 0.5 s against a 0.3 s cut.)
    /// </summary>
    internal static double HalfOf(TimeSpan timeout) => timeout.TotalSeconds / 2 is var half && half >= 2 ? Math.Floor(half) : half;

    /// <summary>What to do about the finding, in a sentence.</summary>
    public static string AdviceFor(IdleScanResult scan)
    {
        if (scan.Failure is { Stage: ProbeStage.Ping } notHeld)
        {
            return $"cannot scan: {notHeld.Message}";
        }

        if (scan.Failure is { } unreachable && scan.Connections == 0)
        {
            return $"cannot scan: no connection could be opened ({unreachable.Message}); check the URL, and that the server runs and accepts WebSockets there (lifeline probe URL shows each step)";
        }

        if (scan.Failure is { } failure)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"scan stopped early: a connection could not be opened ({failure.Message}); so far the longest silence survived was {(scan.LongestSurvived is { } survived ? $"{survived.TotalSeconds:0.##} s" : "none")} and the shortest cut {(scan.ShortestKilled is { } killed ? $"{killed.TotalSeconds:0.##} s" : "none")}; run it again for an answer");
        }

        // No idle estimate (even --min was cut, unseen until the scan sent again): the pinged connection's own lifetime.
        var advice = scan.CutDespiteTraffic && (scan.IdleTimeout ?? scan.BusyConnectionEnd?.After ?? scan.ShortestKilled) is { } lifetime
            ? string.Create(CultureInfo.InvariantCulture,
                $"something on the path ends connections after about {lifetime.TotalSeconds:0.#} s even when they carry pings: a connection pinged every {scan.BusyPingInterval.TotalSeconds:0.##} s was cut the same way, after {scan.BusyConnectionEnd!.After.TotalSeconds:0.#} s, so keep-alive pings will not prevent it. ") + CutDespiteTrafficRemedy(scan, lifetime)
            : scan.Interrupted && !scan.Found
            ? string.Create(CultureInfo.InvariantCulture,
                $"scan interrupted: no cut seen yet; the longest silence survived so far was {(scan.LongestSurvived is { } s ? $"{s.TotalSeconds:0.##} s" : "none")}; run it to the end for an answer")
            : scan.Found && scan.IdleTimeout is null && scan.ShortestKilled is { } atMost
            ? string.Create(CultureInfo.InvariantCulture,
                $"something on the path cuts connections idle for {atMost.TotalSeconds:0.##} s or less: even the shortest silence tried (--min) was cut, and the cut showed only when the scan sent again; run it again with a lower --min to time it")
            : scan.Found && (scan.IdleTimeout ?? scan.ShortestKilled) is { } timeout
            ? string.Create(CultureInfo.InvariantCulture,
                $"something on the path cuts connections idle for about {timeout.TotalSeconds:0.#} s; send keep-alive pings at most every {HalfOf(timeout):0.##} s (half the timeout) so the link never looks idle")
            : string.Create(CultureInfo.InvariantCulture,
                $"none up to --max: connections survived {scan.MaxSilence.TotalSeconds:0.#} s of silence; a keep-alive interval below that is safe on this path");
        if (scan.BusyConnectionEnd is { } busy && !scan.CutDespiteTraffic)
        {
            advice += string.Create(CultureInfo.InvariantCulture,
                $"; note: a connection pinged every {scan.BusyPingInterval.TotalSeconds:0.##} s was cut even so, after {busy.After.TotalSeconds:0.#} s ({busy.Describe()}): something may also limit how long a connection lives");
        }

        if (scan.ServerMessages > 0)
        {
            // Before, only its pings were noted: a server that streams kept the path busy, and "none up to --max" read
            // as a clean bill for idle links.
            advice += scan.Found
                ? string.Create(CultureInfo.InvariantCulture,
                    $"; note: the server sent {scan.ServerMessages} message(s) during the silences, which may have restarted the idle clock of what cuts idle links; scan an endpoint that stays quiet until spoken to for the exact time")
                : string.Create(CultureInfo.InvariantCulture,
                    $"; note: the server sent {scan.ServerMessages} message(s) during the silences, so the path was not idle and a cut of idle connections may not have shown; scan an endpoint that stays quiet until spoken to");
        }
        else if (scan.ServerPings > 0)
        {
            advice += "; note: the server sent pings during the silence, so the path was not fully idle";
        }

        return advice;
    }

    /// <summary>
    /// What to do about connections cut at a fixed age whatever their traffic. A Close frame comes from the server or a
    /// proxy that speaks WebSocket, not from a TCP-level timeout; a 1008 in particular is most likely a verdict on the
    /// client (a credential checked again), which a longer limit on the path does not change. The scan sends no
    /// messages, so an idle clock that counts only messages stays the other possibility.
    /// </summary>
    private static string CutDespiteTrafficRemedy(IdleScanResult scan, TimeSpan lifetime)
    {
        var closeFrame = scan.KilledBy == ConnectionEndKind.CloseFrame && scan.CloseCode is not null;
        var name = closeFrame ? CloseCodeCatalog.Get(new WireCloseCode(scan.CloseCode!.Value)).GetName(CultureInfo.InvariantCulture) : null;
        if (closeFrame && scan.CloseCode == WireCloseCode.PolicyViolation.Value)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"The cut is a Close frame with {scan.CloseCode} ({name}) from the server itself: most likely a policy of its own after that long, such as a credential it checks again (an access token that expired): renew it before then, and reconnect with a fresh one rather than retrying the old. If instead its idle clock counts only application messages, send a heartbeat message (not a ping) more often than that. Until then expect a reconnect about every {lifetime.TotalSeconds:0.#} s");
        }

        var remedy = string.Create(CultureInfo.InvariantCulture,
            $"Either it limits how long a connection lives (a maximum duration, a timeout counted from the start): expect a reconnect about every {lifetime.TotalSeconds:0.#} s, or raise the limit; or its idle clock counts only messages: send an application heartbeat message (not a ping) more often than that");
        return closeFrame
            ? remedy + string.Create(CultureInfo.InvariantCulture, $"; the cut is a Close frame with {scan.CloseCode} ({name}): the server or a proxy that speaks WebSocket ends the connections, not a TCP-level timeout")
            : remedy;
    }

    /// <summary>One progress event as the line the CLI prints: "[  12.0 s] round 2: ...".</summary>
    public static string ProgressLine(IdleScanProgress progress)
    {
        static string Seconds(TimeSpan? value) => string.Create(CultureInfo.InvariantCulture, $"{value.GetValueOrDefault().TotalSeconds:0.##} s");
        var line = progress.Kind switch
        {
            IdleScanProgressKind.RoundStarted =>
                $"round {progress.Round}: holding {progress.Silences.Count} connections silent for {string.Join(", ", progress.Silences.Select(d => Seconds(d)))}",
            IdleScanProgressKind.SilenceSurvived => $"  {Seconds(progress.Silence)} of silence: survived",
            IdleScanProgressKind.SilenceKilled => $"  {Seconds(progress.Silence)} of silence: killed after {Seconds(progress.KilledAfter)} ({progress.End?.Describe()})",
            IdleScanProgressKind.BusyConnectionCut => $"  the connection kept busy with pings was cut too, after {Seconds(progress.KilledAfter)} ({progress.End?.Describe()})",
            _ => string.Create(CultureInfo.InvariantCulture,
                $"  ... {progress.SilentConnections} connection(s) still silent; longest silence survived so far: {(progress.LongestSurvived is { } s ? Seconds(s) : "none yet")}"),
        };
        return string.Create(CultureInfo.InvariantCulture, $"[{progress.Elapsed.TotalSeconds,6:0.0} s] {line}");
    }

    /// <summary>The end kinds as the text output describes them.</summary>
    public static string DescribeKilledBy(IdleScanResult scan) => scan.CutOnNextPacket
        ? DescribeKind(scan) + ", but only in answer to the first packet after the silence: the path forgot the connection silently, so clients learn of it only when they next send"
        : DescribeKind(scan);

    private static string DescribeKind(IdleScanResult scan) => scan.KilledBy switch
    {
        null => "-",
        ConnectionEndKind.CloseFrame => $"a Close frame with {scan.CloseCode} {scan.CloseReason}",
        ConnectionEndKind.Fin => "FIN without a Close frame (clients see 1006)",
        ConnectionEndKind.Reset => "RST (clients see 1006)",
        ConnectionEndKind.ProtocolError => $"a protocol error ({scan.CloseReason})",
        _ => "a silent drop, found by a ping after the silence (clients see 1006 only once keep-alive notices)",
    };
}
