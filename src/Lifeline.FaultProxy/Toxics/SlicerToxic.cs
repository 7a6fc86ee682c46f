namespace Lifeline.FaultProxy.Toxics;

/// <summary>
/// Splits every chunk into writes of at most <see cref="MaxSliceBytes"/> bytes, optionally pausing between
/// them: frame headers and payloads then arrive in pieces, as they can on slow or fragmented networks.
/// </summary>
public sealed class SlicerToxic : IToxic
{
    private readonly TimeProvider _time;

    /// <summary>Creates a slicer.</summary>
    /// <param name="maxSliceBytes">At least 1.</param>
    /// <param name="pause">A pause between slices; zero for none.</param>
    /// <param name="timeProvider">The clock; defaults to the system clock.</param>
    public SlicerToxic(int maxSliceBytes, TimeSpan pause = default, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSliceBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(pause, TimeSpan.Zero);
        MaxSliceBytes = maxSliceBytes;
        Pause = pause;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The largest write.</summary>
    public int MaxSliceBytes { get; }

    /// <summary>The pause between writes.</summary>
    public TimeSpan Pause { get; }

    /// <inheritdoc />
    public string Name => "slicer";

    /// <inheritdoc />
    public async ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken)
    {
        while (!chunk.IsEmpty)
        {
            var piece = chunk[..Math.Min(MaxSliceBytes, chunk.Length)];
            chunk = chunk[piece.Length..];
            await forward(piece, cancellationToken).ConfigureAwait(false);
            if (Pause > TimeSpan.Zero && !chunk.IsEmpty)
            {
                await Task.Delay(Pause, _time, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
