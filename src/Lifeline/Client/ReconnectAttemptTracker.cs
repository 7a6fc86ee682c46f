namespace Lifeline.Client;

/// <summary>
/// Counts attempts within one outage and measures how long it has lasted. A connection that stayed up for the stable
/// period, or carried messages and stayed up for a tenth of it (1 s by default), was a success: the next loss starts
/// again at attempt 1. One that drops sooner counts as a failed attempt, so a server that accepts and closes at once,
/// with or without a greeting, still meets a growing backoff, while a flapping link that works between drops is
/// retried promptly each time.
/// </summary>
/// <remarks>Not thread-safe: used only by the client's connection loop.</remarks>
internal sealed class ReconnectAttemptTracker(TimeProvider time, TimeSpan stablePeriod)
{
    private long _outageStart = time.GetTimestamp();
    private long? _connectedAt;

    /// <summary>The number of the next attempt, from 1.</summary>
    public int Attempt { get; private set; } = 1;

    /// <summary>How long the current outage has lasted.</summary>
    public TimeSpan Elapsed => time.GetElapsedTime(_outageStart);

    public void AttemptFailed() => Attempt++;

    public void Connected() => _connectedAt = time.GetTimestamp();

    /// <summary>Records a lost connection; returns how long it had been up.</summary>
    /// <param name="carriedMessages">Whether the connection received at least one message.</param>
    public TimeSpan Disconnected(bool carriedMessages)
    {
        var upFor = _connectedAt is { } at ? time.GetElapsedTime(at) : TimeSpan.Zero;
        _connectedAt = null;
        if (upFor >= stablePeriod || (carriedMessages && upFor >= stablePeriod / 10))
        {
            Attempt = 1;
            _outageStart = time.GetTimestamp();
        }
        else
        {
            Attempt++;
        }

        return upFor;
    }
}
