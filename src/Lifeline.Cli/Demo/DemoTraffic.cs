namespace Lifeline.Cli.Demo;

/// <summary>
/// What every sender (client or server) consults before each message: whether to send, which incident the message
/// belongs to, and whether the server is shedding load. Also the demo's clock: milliseconds since it started.
/// </summary>
/// <remarks>Thread-safe: plain fields read and written with Volatile; the random source is locked.</remarks>
internal sealed class DemoTraffic(TimeProvider time, int seed)
{
    private readonly DateTimeOffset _start = time.GetUtcNow();
#pragma warning disable CA5394 // Spread of retry hints, not secrecy.
    private readonly Random _random = new(seed);
#pragma warning restore CA5394
    private readonly Lock _randomLock = new();
    private int _incident;
    private int _sending = 1;
    private int _paused;
    private double _shedUntil = double.NegativeInfinity;

    /// <summary>How often each client and each server stream sends a number: 5 messages a second each way.</summary>
    public static TimeSpan Tick { get; } = TimeSpan.FromMilliseconds(200);

    public TimeProvider Time { get; } = time;

    /// <summary>The incident new messages belong to (0 before the first).</summary>
    public int Incident
    {
        get => Volatile.Read(ref _incident);
        set => Volatile.Write(ref _incident, value);
    }

    /// <summary>False once the run is over and the streams settle.</summary>
    public bool Sending
    {
        get => Volatile.Read(ref _sending) != 0;
        set => Volatile.Write(ref _sending, value ? 1 : 0);
    }

    /// <summary>True while every stream is quiet (the idle-cut incident).</summary>
    public bool Paused
    {
        get => Volatile.Read(ref _paused) != 0;
        set => Volatile.Write(ref _paused, value ? 1 : 0);
    }

    public bool ShouldSend => Sending && !Paused;

    /// <summary>Milliseconds since the demo started, from the same clock as the clients' event timestamps.</summary>
    public double Now => (Time.GetUtcNow() - _start).TotalMilliseconds;

    public double At(DateTimeOffset timestamp) => (timestamp - _start).TotalMilliseconds;

    public bool IsShedding => Now < Volatile.Read(ref _shedUntil);

    public void ShedFor(TimeSpan duration) => Volatile.Write(ref _shedUntil, Now + duration.TotalMilliseconds);

    public void StopShedding() => Volatile.Write(ref _shedUntil, double.NegativeInfinity);

    /// <summary>A retry hint for a shed client: the rest of the shed window plus a spread of up to one second.</summary>
    public TimeSpan ShedHint()
    {
        var remaining = Math.Max(0, Volatile.Read(ref _shedUntil) - Now);
        return TimeSpan.FromMilliseconds(remaining + Next(200, 1200));
    }

    public int Next(int min, int max)
    {
        lock (_randomLock)
        {
#pragma warning disable CA5394
            return _random.Next(min, max);
#pragma warning restore CA5394
        }
    }

    /// <summary>Picks half of <paramref name="items"/> (rounded up), reproducibly for a seed.</summary>
    public IReadOnlyList<T> PickHalf<T>(IReadOnlyList<T> items)
    {
        var shuffled = items.ToArray();
        lock (_randomLock)
        {
#pragma warning disable CA5394
            _random.Shuffle(shuffled);
#pragma warning restore CA5394
        }

        return shuffled[..((shuffled.Length + 1) / 2)];
    }
}
