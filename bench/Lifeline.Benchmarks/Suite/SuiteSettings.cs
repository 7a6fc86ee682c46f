namespace Lifeline.Benchmarks.Suite;

/// <summary>The sizes of one suite run: <see cref="Full"/> for the figures in docs/benchmarks.md, <see cref="Smoke"/> to check that every scenario runs.</summary>
internal sealed record SuiteSettings
{
    public static SuiteSettings Full { get; } = new();

    public static SuiteSettings Smoke { get; } = new()
    {
        IsSmoke = true,
        SmallMessages = 2_000,
        LargeMessages = 200,
        Repetitions = 1,
        EchoMessages = 50,
        EchoWarmup = 10,
        StormClients = 20,
        StormBound = TimeSpan.FromSeconds(15),
        DeadLinkBound = TimeSpan.FromSeconds(2),
        IdleConnections = 20,
        HeldConnections = 50,
        HoldFor = TimeSpan.FromSeconds(1),
    };

    public bool IsSmoke { get; init; }

    /// <summary>Messages per throughput run at 32 B.</summary>
    public int SmallMessages { get; init; } = 300_000;

    /// <summary>Messages per throughput run at 4 KiB.</summary>
    public int LargeMessages { get; init; } = 20_000;

    /// <summary>Interleaved runs per throughput row; the median is reported.</summary>
    public int Repetitions { get; init; } = 3;

    public int EchoMessages { get; init; } = 20_000;

    public int EchoWarmup { get; init; } = 2_000;

    public int StormClients { get; init; } = 5_000;

    /// <summary>How long a storm waits for every client to be back before it reports the stragglers.</summary>
    public TimeSpan StormBound { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>How long the black-hole scenario waits for a client to notice.</summary>
    public TimeSpan DeadLinkBound { get; init; } = TimeSpan.FromSeconds(75);

    public int IdleConnections { get; init; } = 2_000;

    public int HeldConnections { get; init; } = 10_000;

    public TimeSpan HoldFor { get; init; } = TimeSpan.FromMinutes(1);
}
