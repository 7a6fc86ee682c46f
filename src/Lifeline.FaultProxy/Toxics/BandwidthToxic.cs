namespace Lifeline.FaultProxy.Toxics;

/// <summary>Limits throughput to <see cref="BytesPerSecond"/> by pacing chunks of at most a tenth of a second's worth.</summary>
public sealed class BandwidthToxic : IToxic
{
    private readonly TimeProvider _time;

    /// <summary>Creates a bandwidth limit.</summary>
    /// <param name="bytesPerSecond">At least 1.</param>
    /// <param name="timeProvider">The clock; defaults to the system clock.</param>
    public BandwidthToxic(long bytesPerSecond, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bytesPerSecond, 1);
        BytesPerSecond = bytesPerSecond;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The throughput limit.</summary>
    public long BytesPerSecond { get; }

    /// <inheritdoc />
    public string Name => "bandwidth";

    /// <inheritdoc />
    public async ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken)
    {
        var slice = (int)Math.Clamp(BytesPerSecond / 10, 1, int.MaxValue);
        while (!chunk.IsEmpty)
        {
            var piece = chunk[..Math.Min(slice, chunk.Length)];
            chunk = chunk[piece.Length..];
            // A piece may leave only once the time it costs at this rate has passed.
            await Task.Delay(TimeSpan.FromSeconds((double)piece.Length / BytesPerSecond), _time, cancellationToken).ConfigureAwait(false);
            await forward(piece, cancellationToken).ConfigureAwait(false);
        }
    }
}
