namespace Lifeline.FaultProxy.Toxics;

/// <summary>Delays every chunk by <see cref="Latency"/> plus a uniform random jitter of up to ± <see cref="Jitter"/>.</summary>
/// <remarks>
/// In a proxy, each chunk the proxy reads leaves its delay after it was read, on the proxy's clock
/// (<see cref="FaultProxyOptions.TimeProvider"/>, not the one given here), and the proxy goes on reading meanwhile: up
/// to 1 MiB per direction is on its way at once, as over a path with a 1 MiB window, so a stream carries at most 1 MiB
/// per delay (it carried one read, 16 KiB, per delay before). The delay applies once per read, wherever the toxic sits
/// in the chain (a slicer's pieces are not delayed one by one). A jitter never reorders: a chunk leaves no sooner than
/// the one before it. A FIN follows the bytes before it, delayed as they are; a reset is passed on at once, and what is
/// still on its way is dropped. Used on its own (outside a proxy), <see cref="ProcessAsync"/> delays each chunk on
/// this toxic's clock before passing it on. To limit throughput, use <see cref="BandwidthToxic"/>.
/// </remarks>
public sealed class LatencyToxic : IToxic
{
    private readonly TimeProvider _time;

    /// <summary>Creates a latency fault.</summary>
    /// <param name="latency">The base delay; zero or more.</param>
    /// <param name="jitter">The largest random deviation either way; zero or more, at most <paramref name="latency"/>.</param>
    /// <param name="timeProvider">
    /// The clock when the toxic runs on its own (tests pass a fake one); in a proxy the proxy's clock times the delay.
    /// Defaults to the system clock.
    /// </param>
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
        var delay = NextDelay();
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
        }

        await forward(chunk, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The delay of the next chunk: <see cref="Latency"/> with a jitter drawn for it.</summary>
    internal TimeSpan NextDelay()
    {
#pragma warning disable CA5394 // Jitter needs no cryptographic randomness.
        var deviation = Jitter.Ticks == 0 ? 0 : (Random.Shared.NextDouble() * 2 - 1) * Jitter.Ticks;
#pragma warning restore CA5394
        return TimeSpan.FromTicks(Latency.Ticks + (long)deviation);
    }
}
