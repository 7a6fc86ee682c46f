using System.Buffers;
using System.Threading.Channels;

namespace Lifeline.FaultProxy;

/// <summary>
/// The chunks of one direction of a link that are on their way under latency. The pump goes on reading while earlier
/// chunks wait out their delay, so latency adds to each chunk's time on the way, as a long path does, instead of
/// capping the throughput at one read (16 KiB) per delay; at most 1 MiB is on its way per delay now, as over a path
/// with a 1 MiB window. Chunks leave in the order they came, and a FIN after them.
/// </summary>
/// <remarks>One pump adds, one sending loop takes: adding and <see cref="CompleteAsync"/> are not thread-safe.</remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore's wait handle is never asked for; the token source is disposed by AbandonAsync, which the pump always calls last.")]
internal sealed class DelayLine
{
    /// <summary>Chunks of at most one read (16 KiB) each: at most 1 MiB waits here per direction, then the pump stops reading.</summary>
    private const int Capacity = 64;

    private readonly Channel<Entry> _entries = Channel.CreateUnbounded<Entry>(new UnboundedChannelOptions
    {
        SingleReader = true,
        SingleWriter = true,
    });

    private readonly SemaphoreSlim _room = new(Capacity); // taken by a chunk (or the FIN) until it has left

    private static readonly TimeSpan LongestStep = TimeSpan.FromHours(1);
    private static readonly TimeSpan LongestDelay = TimeSpan.FromDays(365);

    private readonly TimeProvider _time;
    private readonly Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> _forward;
    private readonly Func<CancellationToken, ValueTask> _passFin;
    private readonly CancellationTokenSource _stop;
    private readonly Task _sending;
    private long _lastDue;
    private long _waitingBytes;
    private int _waiting;
    private int _timersArmed;

    /// <param name="time">The clock the delays run on.</param>
    /// <param name="forward">Passes a chunk on (the other toxics, then the write) once its delay has passed.</param>
    /// <param name="passFin">Passes the FIN on once the chunks before it have gone.</param>
    /// <param name="stop">Ends the sending loop (as <see cref="AbandonAsync"/> does); the chunks still waiting are dropped.</param>
    public DelayLine(TimeProvider time, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, Func<CancellationToken, ValueTask> passFin, CancellationToken stop)
    {
        _time = time;
        _forward = forward;
        _passFin = passFin;
        _lastDue = time.GetTimestamp();
        _stop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _sending = SendAsync(_stop.Token);
    }

    /// <summary>True when nothing waits here: a chunk without a delay may then be written at once without overtaking one.</summary>
    public bool IsEmpty => Volatile.Read(ref _waiting) == 0;

    /// <summary>The chunks, and the FIN, read but not yet passed on.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>
    /// How many delays the sending loop has armed (counted once its timer is set): a test on a fake clock waits on it
    /// before it advances the clock, so that the advance cannot fall between the loop reading the clock and arming.
    /// </summary>
    internal int TimersArmed => Volatile.Read(ref _timersArmed);

    /// <summary>The bytes read but not yet passed on.</summary>
    public long WaitingBytes => Interlocked.Read(ref _waitingBytes);

    /// <summary>
    /// Copies a chunk in, to leave <paramref name="delay"/> from now (or right after the one before it, which a smaller
    /// jitter must not overtake). Waits while the line is full. False when the sending loop has ended (its failure is
    /// then thrown by <see cref="CompleteAsync"/>).
    /// </summary>
    public ValueTask<bool> AddAsync(ReadOnlyMemory<byte> chunk, TimeSpan delay, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(chunk.Length);
        chunk.CopyTo(buffer);
        return EnqueueAsync(new Entry(buffer, chunk.Length, Due(delay)), cancellationToken);
    }

    /// <summary>Adds the FIN behind the chunks waiting, with its own delay as a chunk has.</summary>
    public ValueTask<bool> AddFinAsync(TimeSpan delay, CancellationToken cancellationToken) =>
        EnqueueAsync(new Entry(null, 0, Due(delay)), cancellationToken);

    /// <summary>Lets the line empty and waits for it; rethrows what ended the sending loop (a failed write).</summary>
    public Task CompleteAsync()
    {
        _entries.Writer.TryComplete();
        return _sending;
    }

    /// <summary>
    /// Ends the sending loop now, dropping what waits (the pump ended with a failure, or the link goes), and waits for
    /// it. Call it once, last; it throws nothing.
    /// </summary>
    public async Task AbandonAsync()
    {
        _entries.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _sending.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Whatever ended the loop (a toxic's own exception too) was the pump's to see through CompleteAsync; the pump is ending.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            _stop.Dispose();
        }
    }

    private long Due(TimeSpan delay)
    {
        // A year at most, so that the timestamp cannot overflow (a delay of TimeSpan.MaxValue would otherwise be none).
        var seconds = Math.Min(delay.TotalSeconds, LongestDelay.TotalSeconds);
        var due = _time.GetTimestamp() + (long)(seconds * _time.TimestampFrequency);
        _lastDue = Math.Max(due, _lastDue);
        return _lastDue;
    }

    private async ValueTask<bool> EnqueueAsync(Entry entry, CancellationToken cancellationToken)
    {
        try
        {
            await _room.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (entry.Buffer is { } buffer)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            throw;
        }

        Interlocked.Increment(ref _waiting);
        Interlocked.Add(ref _waitingBytes, entry.Length);
        if (_entries.Writer.TryWrite(entry))
        {
            return true;
        }

        Release(entry); // the sending loop has ended
        return false;
    }

    private async Task SendAsync(CancellationToken stop)
    {
        await Task.Yield(); // the pump that created the line goes on at once
        try
        {
            while (await _entries.Reader.WaitToReadAsync(stop).ConfigureAwait(false))
            {
                while (_entries.Reader.TryRead(out var entry))
                {
                    try
                    {
                        // In steps of at most an hour: Task.Delay takes no more than about 49 days at once.
                        TimeSpan remaining;
                        while ((remaining = _time.GetElapsedTime(_time.GetTimestamp(), entry.Due)) > TimeSpan.Zero)
                        {
                            // Whole milliseconds, rounded up: a timer counts whole milliseconds, and less than one
                            // waited nothing, so the loop spun on the clock until the chunk was due (on a fake clock
                            // that never moves while it spins, for ever).
                            var step = remaining < LongestStep ? remaining : LongestStep;
                            var wait = Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(step.TotalMilliseconds)), _time, stop);
                            Interlocked.Increment(ref _timersArmed);
                            await wait.ConfigureAwait(false);
                        }

                        if (entry.Buffer is null)
                        {
                            await _passFin(stop).ConfigureAwait(false);
                        }
                        else
                        {
                            await _forward(entry.Buffer.AsMemory(0, entry.Length), stop).ConfigureAwait(false);
                        }
                    }
                    finally
                    {
                        Release(entry);
                    }
                }
            }
        }
        finally
        {
            // Ended by the stop or a failed write: the pump's next add sees the line closed, and what waits is dropped
            // (the link is going).
            _entries.Writer.TryComplete();
            while (_entries.Reader.TryRead(out var left))
            {
                Release(left);
            }
        }
    }

    private void Release(Entry entry)
    {
        if (entry.Buffer is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        Interlocked.Add(ref _waitingBytes, -entry.Length);
        Interlocked.Decrement(ref _waiting);
        _room.Release();
    }

    /// <summary>A chunk (a pooled copy, <paramref name="Buffer"/> null for the FIN) and when it may leave (a timestamp).</summary>
    private readonly record struct Entry(byte[]? Buffer, int Length, long Due);
}
