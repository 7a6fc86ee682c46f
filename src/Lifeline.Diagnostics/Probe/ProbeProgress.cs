namespace Lifeline.Diagnostics.Probe;

/// <summary>One step of a probe, reported as it completes.</summary>
/// <remarks>Immutable. Reported on the probe's own thread: a handler should return quickly.</remarks>
public sealed class ProbeProgress
{
    internal ProbeProgress(ProbeStage stage, TimeSpan? duration)
    {
        Stage = stage;
        Duration = duration;
    }

    /// <summary>The step: a connect stage that succeeded, a ping, or the start of the watch.</summary>
    public ProbeStage Stage { get; }

    /// <summary>How long the step took: for <see cref="ProbeStage.Ping"/> the round trip, or null when the ping was lost; null for <see cref="ProbeStage.Watch"/>.</summary>
    public TimeSpan? Duration { get; }
}
