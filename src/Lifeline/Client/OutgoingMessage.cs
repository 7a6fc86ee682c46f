using System.Buffers;
using System.Net.WebSockets;

namespace Lifeline.Client;

/// <summary>A queued send: a pooled copy of the caller's bytes, returned to the pool exactly once.</summary>
internal sealed class OutgoingMessage
{
    private byte[]? _buffer;
    private TaskCompletionSource<bool>? _acknowledged;
    private TaskCompletionSource? _written;

    public OutgoingMessage(ReadOnlySpan<byte> data, WebSocketMessageType type, long enqueuedAt)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, data.Length));
        data.CopyTo(_buffer);
        Length = data.Length;
        Type = type;
        EnqueuedAt = enqueuedAt;
    }

    public int Length { get; }

    /// <summary>Session mode, when the sender waits for the acknowledgement: completed true when acknowledged, false when it never will be.</summary>
    public TaskCompletionSource<bool>? Acknowledged
    {
        get => _acknowledged;
        set => _acknowledged = value;
    }

    /// <summary>Hands the acknowledgement source to the queue's writer (which links it to the replay buffer), so <see cref="Release"/> no longer fails it.</summary>
    public TaskCompletionSource<bool>? TakeAcknowledged() => Interlocked.Exchange(ref _acknowledged, null);

    /// <summary>
    /// For a sender that waits until its message is written (queued while the connection takes writes): the task to
    /// wait on. Completed by <see cref="TakeWritten"/>'s taker or <see cref="SettleWritten"/>, whichever comes first.
    /// </summary>
    public Task WaitUntilWritten()
    {
        _written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _written.Task;
    }

    /// <summary>For the writer: the signal of a sender waiting for this message's write, to complete once written.</summary>
    public TaskCompletionSource? TakeWritten() => Interlocked.Exchange(ref _written, null);

    /// <summary>
    /// The message will not be written on this connection (it stays queued for the next, or was dropped): a sender
    /// waiting for its write goes on, as it would have had it queued while disconnected.
    /// </summary>
    public void SettleWritten() => TakeWritten()?.TrySetResult();

    public WebSocketMessageType Type { get; }

    /// <summary>The TimeProvider timestamp at which it was queued.</summary>
    public long EnqueuedAt { get; }

    public ReadOnlyMemory<byte> Data => (_buffer ?? throw new ObjectDisposedException(nameof(OutgoingMessage))).AsMemory(0, Length);

    public void Release()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        TakeAcknowledged()?.TrySetResult(false); // null when the writer already linked it to the replay buffer's task
        SettleWritten();
    }
}
