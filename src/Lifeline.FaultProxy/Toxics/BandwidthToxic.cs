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

    /// <summary>
    /// How far ahead of its schedule a piece may leave. Timers count whole milliseconds: waiting out each piece's own
    /// cost (0.8 ms for 16 KiB at 20 MB/s) waited nothing at all, so fast limits and small pieces went through unpaced.
    /// Pieces are booked on a schedule per link and direction instead, and wait only once it runs a millisecond ahead.
    /// </summary>
    private static readonly TimeSpan Slack = TimeSpan.FromMilliseconds(1);

    /// <inheritdoc />
    public async ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken)
    {
        var slice = (int)Math.Clamp(BytesPerSecond / 10, 1, int.MaxValue);
        var flow = LinkFlow.Current ?? new LinkFlow(); // on its own (no link): a schedule for this chunk alone
        while (!chunk.IsEmpty)
        {
            var piece = chunk[..Math.Min(slice, chunk.Length)];
            chunk = chunk[piece.Length..];
            // A piece may leave only once the bytes before it and its own have had their time at this rate.
            var cost = (long)Math.Ceiling((double)piece.Length * _time.TimestampFrequency / BytesPerSecond);
            var due = flow.Book(this, _time.GetTimestamp(), cost);
            TimeSpan ahead;
            while ((ahead = _time.GetElapsedTime(_time.GetTimestamp(), due)) >= Slack)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(ahead.TotalMilliseconds)), _time, cancellationToken).ConfigureAwait(false);
            }

            await forward(piece, cancellationToken).ConfigureAwait(false);
        }
    }
}
