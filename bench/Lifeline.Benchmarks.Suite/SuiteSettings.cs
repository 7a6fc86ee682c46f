namespace Lifeline.Benchmarks.Suite;

/// <summary>The sizes of one suite run: <see cref="Full"/> for the figures in docs/benchmarks.md, <see cref="Smoke"/> to check that every scenario runs.</summary>
internal sealed record SuiteSettings
{
    public static SuiteSettings Full { get; } = new();

    public static SuiteSettings Smoke { get; } = new()
    {
        IsSmoke = true,
        SmallMessagesReceived = 2_000,
        LargeMessagesReceived = 200,
        SmallMessagesSent = 2_000,
        LargeMessagesSent = 200,
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

    /// <summary>How to start the server that runs in a process of its own (echo, memory and the restart storm); set by <see cref="SuiteRunner"/>.</summary>
    public SuiteHostCommand? Host { get; init; }

    // Each run lasts a few tenths of a second or more: shorter ones (300,000 small messages received in 25 ms) moved by
    // a quarter between runs on this 2-core machine, the clients alike.

    /// <summary>Messages per receive run at 32 B (68 MB of pre-built frames).</summary>
    public int SmallMessagesReceived { get; init; } = 2_000_000;

    /// <summary>Messages per receive run at 4 KiB (400 MB of pre-built frames, and as much again for the session rows).</summary>
    public int LargeMessagesReceived { get; init; } = 100_000;

    /// <summary>Messages per send run at 32 B: one system call each, about 130,000 a second.</summary>
    public int SmallMessagesSent { get; init; } = 200_000;

    /// <summary>Messages per send run at 4 KiB.</summary>
    public int LargeMessagesSent { get; init; } = 50_000;

    /// <summary>Interleaved runs per throughput row; the median is reported.</summary>
    public int Repetitions { get; init; } = 5;

    public int EchoMessages { get; init; } = 100_000;

    /// <summary>
    /// Round trips per client before the timed ones: enough for the JIT to finish moving the hot paths through their
    /// tiers (at 2,000 the session path was still being recompiled during the first seconds of the timed ones).
    /// </summary>
    public int EchoWarmup { get; init; } = 20_000;

    public int StormClients { get; init; } = 5_000;

    /// <summary>How long a storm waits for every client to be back before it reports the stragglers.</summary>
    public TimeSpan StormBound { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>How long the black-hole scenario waits for a client to notice.</summary>
    public TimeSpan DeadLinkBound { get; init; } = TimeSpan.FromSeconds(75);

    public int IdleConnections { get; init; } = 2_000;

    public int HeldConnections { get; init; } = 10_000;

    public TimeSpan HoldFor { get; init; } = TimeSpan.FromMinutes(1);
}
