using Lifeline.Diagnostics.Probe;

namespace Lifeline.Diagnostics.IdleScan;

/// <summary>What an <see cref="IdleScanProgress"/> reports.</summary>
public enum IdleScanProgressKind
{
    /// <summary>A round began: <see cref="IdleScanProgress.Silences"/> are held at once.</summary>
    RoundStarted,

    /// <summary>A connection lived through <see cref="IdleScanProgress.Silence"/> and answered a ping after it.</summary>
    SilenceSurvived,

    /// <summary>A connection held silent for <see cref="IdleScanProgress.Silence"/> was cut after <see cref="IdleScanProgress.KilledAfter"/>.</summary>
    SilenceKilled,

    /// <summary>A periodic sign of life during long silences (every 10 s).</summary>
    StillWaiting,

    /// <summary>
    /// The connection the scan keeps busy (pinged all along) was cut after <see cref="IdleScanProgress.KilledAfter"/>
    /// (its age), as <see cref="IdleScanProgress.End"/> says: the path cuts connections whatever their traffic.
    /// </summary>
    BusyConnectionCut,
}

/// <summary>One event of a running idle scan.</summary>
/// <remarks>Immutable. Reported from the scan's own tasks, possibly several at once: a handler must be thread-safe and quick.</remarks>
public sealed class IdleScanProgress
{
    internal IdleScanProgress(IdleScanProgressKind kind, TimeSpan elapsed)
    {
        Kind = kind;
        Elapsed = elapsed;
    }

    /// <summary>What happened.</summary>
    public IdleScanProgressKind Kind { get; }

    /// <summary>Time since the scan started.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>The round number (from 1) for <see cref="IdleScanProgressKind.RoundStarted"/>; otherwise 0.</summary>
    public int Round { get; internal init; }

    /// <summary>For <see cref="IdleScanProgressKind.RoundStarted"/>: the silences held in this round. Otherwise empty.</summary>
    public IReadOnlyList<TimeSpan> Silences { get; internal init; } = [];

    /// <summary>For <see cref="IdleScanProgressKind.SilenceSurvived"/> and <see cref="IdleScanProgressKind.SilenceKilled"/>: the silence held.</summary>
    public TimeSpan? Silence { get; internal init; }

    /// <summary>
    /// For <see cref="IdleScanProgressKind.SilenceKilled"/>: when the cut came (the silence itself for a silent drop). For
    /// <see cref="IdleScanProgressKind.BusyConnectionCut"/>: the busy connection's age when it was cut.
    /// </summary>
    public TimeSpan? KilledAfter { get; internal init; }

    /// <summary>For <see cref="IdleScanProgressKind.SilenceKilled"/> and <see cref="IdleScanProgressKind.BusyConnectionCut"/>: how the connection ended.</summary>
    public ConnectionEnd? End { get; internal init; }

    /// <summary>For <see cref="IdleScanProgressKind.StillWaiting"/>: connections silent right now.</summary>
    public int SilentConnections { get; internal init; }

    /// <summary>For <see cref="IdleScanProgressKind.StillWaiting"/>: the longest silence survived so far, or null.</summary>
    public TimeSpan? LongestSurvived { get; internal init; }
}
