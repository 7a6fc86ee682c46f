using System.Buffers;

namespace Lifeline.Client;

/// <summary>
/// The write side of an HTTP/1.1 link (see <see cref="LinkStream"/>) for a writer that streams: its frames are copied
/// into a pooled buffer and the write completes at once, while a thread-pool worker writes whatever gathered to the
/// connection in one call. A small message then costs a copy instead of a send system call of its own (and the wake-up
/// of the reader on the other side for each), and a burst leaves in a few large writes. Frames that may not wait are
/// written at once, or right behind what is buffered, so the order on the wire is always the order of the calls.
/// </summary>
/// <remarks>
/// One caller at a time: <see cref="LinkStream"/> guarantees it (ClientWebSocket writes one frame at a time, and a ping
/// never overlaps a frame). The worker runs beside that caller; a lock guards what they share. Like a socket's send,
/// "written" means handed to the connection: at most <see cref="Limit"/> bytes wait here, beyond that a write waits for
/// room. No buffer is held once everything is written. Once a write to the connection failed, every later write fails.
/// </remarks>
internal sealed class WriteBehind(Stream inner) : IThreadPoolWorkItem
{
    /// <summary>The most bytes that wait for the worker.</summary>
    public const int Limit = 64 * 1024;

    /// <summary>The smallest buffer taken from the pool (see <see cref="Grow"/>).</summary>
    private const int SmallestBuffer = 1024;

    private readonly Lock _lock = new();
    private byte[]? _pending; // frames waiting for the worker, in order
    private int _count;
    private bool _flushing; // the worker is scheduled or writing: everything goes behind it
    private Exception? _failure;
    private TaskCompletionSource? _progress; // a writer waiting for room, or for the worker to finish
    private int _linkWrites;
    private bool _hasStreamed; // the worker once took more than SmallestBuffer: buffers start at the limit

    /// <summary>Tests: the worker waits for this before each write to the connection, so a burst gathers behind it for certain.</summary>
    public Task? HoldForTest { get; init; }

    /// <summary>Tests: how many writes reached the connection.</summary>
    public int LinkWrites => Volatile.Read(ref _linkWrites);

    /// <summary>Tests: whether a buffer is held or the worker is still busy.</summary>
    public bool Busy
    {
        get
        {
            lock (_lock)
            {
                return _flushing || _pending is not null;
            }
        }
    }

    /// <summary>Tests: the length of the buffer frames gather in; 0 when none is held.</summary>
    public int GatheringCapacity
    {
        get
        {
            lock (_lock)
            {
                return _pending?.Length ?? 0;
            }
        }
    }

    /// <summary>
    /// Writes one frame. <paramref name="mayWait"/>: the frame may wait in the buffer when nothing is being written
    /// (the writer streams); otherwise it is written at once unless frames are waiting, and then behind them.
    /// <paramref name="untilWritten"/>: the call completes only when the frame and everything before it reached the
    /// connection (a Close frame: the connection may be disposed right after it).
    /// </summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> frame, bool mayWait, bool untilWritten, CancellationToken cancellationToken)
    {
        Task? wait;
        lock (_lock)
        {
            if (_failure is { } failure)
            {
                return ValueTask.FromException(Failed(failure));
            }

            if (!_flushing)
            {
                if (!mayWait || untilWritten || frame.Length > Limit)
                {
                    wait = null; // written at once, below
                }
                else
                {
                    Append(frame.Span);
                    _flushing = true;
                    ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false); // another core writes while this one goes on
                    return default;
                }
            }
            else if (!untilWritten && _count + frame.Length <= Limit)
            {
                Append(frame.Span);
                return default;
            }
            else
            {
                wait = (_progress ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
        }

        if (wait is not null)
        {
            return WriteAfterAsync(wait, frame, mayWait, untilWritten, cancellationToken);
        }

        Interlocked.Increment(ref _linkWrites);
        return inner.WriteAsync(frame, cancellationToken);
    }

    private async ValueTask WriteAfterAsync(Task wait, ReadOnlyMemory<byte> frame, bool mayWait, bool untilWritten, CancellationToken cancellationToken)
    {
        await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        await WriteAsync(frame, mayWait, untilWritten, cancellationToken).ConfigureAwait(false);
    }

    private void Append(ReadOnlySpan<byte> frame)
    {
        if (_pending is null || _count + frame.Length > _pending.Length)
        {
            Grow(_count + frame.Length);
        }

        frame.CopyTo(_pending.AsSpan(_count));
        _count += frame.Length;
    }

    /// <summary>
    /// Takes a buffer for at least <paramref name="needed"/> bytes, keeping what gathered: 1 KiB until more than that has
    /// gathered, then <see cref="Limit"/> (as every buffer was before). A process with thousands of clients that each
    /// send one small message at once (a load generator, a gateway) would otherwise take 64 KiB from the pool for each,
    /// far more than the pool keeps, and allocate the rest: 64 KiB of garbage per client per burst. A sender that has
    /// streamed starts at the limit and is never copied, as before; a small buffer outgrown is copied once.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(_pending))]
    private void Grow(int needed)
    {
        var small = _pending is null && !_hasStreamed && needed <= SmallestBuffer;
        var bigger = ArrayPool<byte>.Shared.Rent(small ? SmallestBuffer : Limit);
        if (_pending is not null)
        {
            _pending.AsSpan(0, _count).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_pending);
        }

        _pending = bigger;
    }

    void IThreadPoolWorkItem.Execute() => _ = WriteGatheredAsync();

    /// <summary>The worker: writes what gathered until nothing is left, then lets writers write at once again.</summary>
    private async Task WriteGatheredAsync()
    {
        while (true)
        {
            byte[]? chunk;
            int length;
            TaskCompletionSource? progress;
            lock (_lock)
            {
                progress = _progress;
                _progress = null;
                chunk = _pending;
                length = _count;
                _hasStreamed |= length > SmallestBuffer;
                _pending = null;
                _count = 0;
                if (chunk is null)
                {
                    _flushing = false;
                }
            }

            progress?.TrySetResult(); // room for a waiting writer, or (when done) the way to write at once
            if (chunk is null)
            {
                return;
            }

            try
            {
                if (HoldForTest is { } hold)
                {
                    await hold.ConfigureAwait(false);
                }

                Interlocked.Increment(ref _linkWrites);
                await inner.WriteAsync(chunk.AsMemory(0, length), CancellationToken.None).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // The connection failed: every later write reports it, and the reads find it too.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Fail(e);
                return;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(chunk);
            }
        }
    }

    private void Fail(Exception failure)
    {
        TaskCompletionSource? progress;
        lock (_lock)
        {
            _failure = failure;
            _flushing = false;
            if (_pending is { } pending)
            {
                ArrayPool<byte>.Shared.Return(pending);
                _pending = null;
                _count = 0;
            }

            progress = _progress;
            _progress = null;
        }

        progress?.TrySetResult();
    }

    private static IOException Failed(Exception failure) =>
        new("Writing to the connection failed earlier, so frames written since were not sent: " + failure.Message, failure);
}
