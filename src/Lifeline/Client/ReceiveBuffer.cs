using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Net.WebSockets;
using System.Threading.Channels;

namespace Lifeline.Client;

/// <summary>
/// Messages read ahead of the application, each in pooled memory, bounded by count and by payload bytes. The
/// receive loop reads ahead only while there is room (backpressure: it stops reading the socket), except in session
/// mode while sent messages await acks (see <see cref="HasOverflowRoom"/>); a reader copies
/// a message out and its buffer goes back to the pool. Every member must be called holding <see cref="SyncRoot"/>,
/// which is also the lock of the receive hand-off in <see cref="LifelineClient"/>.
/// </summary>
/// <remarks>
/// A message a reader could not take (its memory was too small) is kept first in line outside the bounds, so a
/// message up to <see cref="LifelineClientOptions.MaxMessageSize"/> always gets through.
/// </remarks>
internal sealed class ReceiveBuffer
{
    private Queue<Item>? _queue; // created by the first message read ahead: a client whose reads keep up has none
    private readonly int _maxMessages;
    private readonly long _maxBytes;
    private TaskCompletionSource? _drained; // created by the first look at Drained
    private Item _head;
    private bool _hasHead;
    private long _bytes;

    public ReceiveBuffer(int maxMessages, long maxBytes)
    {
        _maxMessages = maxMessages;
        _maxBytes = maxBytes;
    }

    public Lock SyncRoot { get; } = new();

    public bool IsCompleted { get; private set; }

    /// <summary>Called (holding the lock) with the payload length when the application took a message read ahead.</summary>
    public Action<int>? QueuedItemTaken { get; set; }

    public int Count => QueuedCount + (_hasHead ? 1 : 0);

    /// <summary>Completes once the buffer is completed and empty. Takes the lock itself.</summary>
    public Task Drained
    {
        get
        {
            lock (SyncRoot)
            {
                if (_drained is null)
                {
                    _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    if (IsCompleted && Count == 0)
                    {
                        _drained.TrySetResult();
                    }
                }

                return _drained.Task;
            }
        }
    }

    /// <summary>True when the loop may read one more message ahead.</summary>
    public bool HasRoom => QueuedCount < _maxMessages && _bytes < _maxBytes;

    /// <summary>
    /// True while at most <paramref name="extraMessages"/> and <paramref name="extraBytes"/> past the bounds: how far a
    /// session's loop reads past them while its sends await acks. Given the server's replay bounds: it sends no more
    /// Data than that past what was acknowledged, and what is read past the bounds is not acknowledged, so once that
    /// much is held only frames that carry acks can follow, and the loop still reads them.
    /// </summary>
    public bool HasOverflowRoom(int extraMessages, long extraBytes) =>
        QueuedCount - (long)_maxMessages <= extraMessages && _bytes - _maxBytes <= extraBytes; // differences: no overflow at long.MaxValue

    private int QueuedCount => _queue?.Count ?? 0;

    /// <summary>Adds a message read ahead; takes ownership of <paramref name="array"/> (rented from the shared pool).</summary>
    public void Enqueue(byte[] array, int length, WebSocketMessageType type)
    {
        if (IsCompleted)
        {
            ArrayPool<byte>.Shared.Return(array);
            return;
        }

        (_queue ??= new Queue<Item>()).Enqueue(new Item(array, length, type));
        _bytes += length;
    }

    /// <summary>Puts a message a reader has read but could not take first in line; takes ownership of the array.</summary>
    public void PutFirst(byte[] array, int length, WebSocketMessageType type)
    {
        _head = new Item(array, length, type);
        _hasHead = true;
    }

    /// <summary>Copies the next message into <paramref name="destination"/> and releases it, or reports that it does not fit.</summary>
    public bool TryTake(Span<byte> destination, out LifelineReceiveResult result)
    {
        if (!TryPeekItem(out var item))
        {
            result = default;
            return false;
        }

        if (item.Length > destination.Length)
        {
            result = new LifelineReceiveResult(LifelineReceiveStatus.DestinationTooSmall, item.Length, item.Type);
            return true;
        }

        item.Array.AsSpan(0, item.Length).CopyTo(destination);
        Remove();
        result = new LifelineReceiveResult(LifelineReceiveStatus.Message, item.Length, item.Type);
        return true;
    }

    /// <summary>Takes the next message as a <see cref="LifelineMessage"/> (a copy the application owns).</summary>
    public bool TryTakeMessage([MaybeNullWhen(false)] out LifelineMessage message, bool remove)
    {
        if (!TryPeekItem(out var item))
        {
            message = null;
            return false;
        }

        message = new LifelineMessage(item.Type, item.Array.AsSpan(0, item.Length).ToArray());
        if (remove)
        {
            Remove();
        }

        return true;
    }

    /// <summary>No more messages will be added; those buffered can still be read.</summary>
    public void Complete()
    {
        IsCompleted = true;
        if (Count == 0)
        {
            _drained?.TrySetResult();
        }
    }

    private bool TryPeekItem(out Item item)
    {
        if (_hasHead)
        {
            item = _head;
            return true;
        }

        item = default;
        return _queue is not null && _queue.TryPeek(out item);
    }

    private void Remove()
    {
        Item item;
        if (_hasHead)
        {
            item = _head;
            _head = default;
            _hasHead = false;
        }
        else
        {
            item = _queue!.Dequeue(); // not at the head, so queued
            _bytes -= item.Length;
            QueuedItemTaken?.Invoke(item.Length);
        }

        ArrayPool<byte>.Shared.Return(item.Array);
        if (IsCompleted && Count == 0)
        {
            _drained?.TrySetResult();
        }
    }

    private readonly record struct Item(byte[] Array, int Length, WebSocketMessageType Type);
}

/// <summary>The <see cref="LifelineClient.Messages"/> reader: the convenient API, built on the client's receive fast path.</summary>
internal sealed class MessageReader(LifelineClient client, ReceiveBuffer buffer) : ChannelReader<LifelineMessage>
{
    public override Task Completion => buffer.Drained;

    public override bool CanCount => true;

    public override int Count
    {
        get
        {
            lock (buffer.SyncRoot)
            {
                return buffer.Count;
            }
        }
    }

    public override bool CanPeek => true;

    public override bool TryRead([MaybeNullWhen(false)] out LifelineMessage item)
    {
        lock (buffer.SyncRoot)
        {
            return buffer.TryTakeMessage(out item, remove: true);
        }
    }

    public override bool TryPeek([MaybeNullWhen(false)] out LifelineMessage item)
    {
        lock (buffer.SyncRoot)
        {
            return buffer.TryTakeMessage(out item, remove: false);
        }
    }

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) =>
        client.WaitForMessageAsync(cancellationToken);
}
