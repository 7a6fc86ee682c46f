namespace Lifeline.FaultProxy.Toxics;

/// <summary>Delays every chunk by <see cref="Latency"/> plus a uniform random jitter of up to ± <see cref="Jitter"/>.</summary>
/// <remarks>
/// A direction's chunks are delayed one after another, and the proxy reads the next only after the delay: under a
/// steady stream a chunk also waits for the ones before it, and a direction carries at most one read (16 KiB) per
/// delay. That models a slow path for request-and-answer traffic, not a long fat pipe; to limit throughput alone, use
/// <see cref="BandwidthToxic"/>.
/// </remarks>
public sealed class LatencyToxic : IToxic
{
    private readonly TimeProvider _time;

    /// <summary>Creates a latency fault.</summary>
    /// <param name="latency">The base delay; zero or more.</param>
    /// <param name="jitter">The largest random deviation either way; zero or more, at most <paramref name="latency"/>.</param>
    /// <param name="timeProvider">The clock (tests pass a fake one); defaults to the system clock.</param>
    public LatencyToxic(TimeSpan latency, TimeSpan jitter = default, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latency, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(jitter, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(jitter, latency);
        Latency = latency;
        Jitter = jitter;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The base delay.</summary>
    public TimeSpan Latency { get; }

    /// <summary>The largest random deviation from <see cref="Latency"/>.</summary>
    public TimeSpan Jitter { get; }

    /// <inheritdoc />
    public string Name => "latency";

    /// <inheritdoc />
    public async ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken)
    {
        // Chunks of one direction are processed one after another, so delaying here keeps their order.
#pragma warning disable CA5394 // Jitter needs no cryptographic randomness.
        var deviation = Jitter.Ticks == 0 ? 0 : (Random.Shared.NextDouble() * 2 - 1) * Jitter.Ticks;
#pragma warning restore CA5394
        var delay = TimeSpan.FromTicks(Latency.Ticks + (long)deviation);
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
        }

        await forward(chunk, cancellationToken).ConfigureAwait(false);
    }
}
