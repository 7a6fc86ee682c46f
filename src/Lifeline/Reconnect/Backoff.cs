namespace Lifeline.Reconnect;

/// <summary>Exponential backoff maths: cap first, then jitter, with an overflow guard.</summary>
public static class Backoff
{
    /// <summary>base × multiplier^(attempt-1), capped at <paramref name="cap"/>; never overflows.</summary>
    public static TimeSpan Exponential(int attempt, TimeSpan baseDelay, double multiplier, TimeSpan cap)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        var ticks = baseDelay.Ticks * Math.Pow(multiplier, attempt - 1);
        // Math.Pow can reach infinity or NaN for large attempts; the cap is the answer then.
        return double.IsFinite(ticks) && ticks < cap.Ticks ? TimeSpan.FromTicks((long)ticks) : cap;
    }

    /// <summary>Applies jitter to a capped delay.</summary>
    /// <param name="mode">The jitter mode.</param>
    /// <param name="capped">The capped exponential delay.</param>
    /// <param name="baseDelay">The base delay (lower bound for decorrelated jitter).</param>
    /// <param name="cap">The cap.</param>
    /// <param name="previous">The previous delay, for decorrelated jitter.</param>
    /// <param name="random">The random source; tests pass a seeded one.</param>
    public static TimeSpan Jitter(JitterMode mode, TimeSpan capped, TimeSpan baseDelay, TimeSpan cap, TimeSpan? previous, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
#pragma warning disable CA5394 // Backoff jitter needs spread, not cryptographic strength.
        switch (mode)
        {
            case JitterMode.Full:
                return TimeSpan.FromTicks((long)(random.NextDouble() * capped.Ticks));
            case JitterMode.Decorrelated:
                var upper = Math.Min(cap.Ticks, Math.Max(baseDelay.Ticks, (previous ?? baseDelay).Ticks) * 3.0);
                var lower = Math.Min(baseDelay.Ticks, upper);
                return TimeSpan.FromTicks((long)(lower + random.NextDouble() * (upper - lower)));
            default:
                return capped;
        }
#pragma warning restore CA5394
    }
}
