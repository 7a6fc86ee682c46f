namespace Lifeline.Session;

/// <summary>
/// The clock of a session's per-message deadlines: a replay entry's age (minutes) and an ack's delay (hundreds of
/// milliseconds). Each message is stamped on both sides, so the clock is read on every send and delivery. With the
/// system's time it reads the millisecond tick count, about 7 ns against about 30 for a high-resolution timestamp on
/// this project's machines; its resolution (a few milliseconds) is far below those deadlines. Any other
/// <see cref="TimeProvider"/> (a test's fake time) is read as given.
/// </summary>
internal readonly struct CoarseClock
{
    private readonly TimeProvider _time;
    private readonly bool _system;

    public CoarseClock(TimeProvider time)
    {
        _time = time;
        _system = ReferenceEquals(time, TimeProvider.System);
    }

    /// <summary>A stamp to pass to <see cref="Since"/> (in units of this clock's own).</summary>
    public long Now() => _system ? Environment.TickCount64 : _time.GetTimestamp();

    /// <summary>The stamp <paramref name="age"/> before now.</summary>
    public long Ago(TimeSpan age) => Now() - (_system ? (long)age.TotalMilliseconds : (long)(age.TotalSeconds * _time.TimestampFrequency));

    /// <summary>The time elapsed since <paramref name="stamp"/>, taken with <see cref="Now"/>.</summary>
    public TimeSpan Since(long stamp) => _system ? TimeSpan.FromMilliseconds(Environment.TickCount64 - stamp) : _time.GetElapsedTime(stamp);
}
