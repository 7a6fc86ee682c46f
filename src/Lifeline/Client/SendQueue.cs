using System.Threading.Channels;

namespace Lifeline.Client;

/// <summary>Why a queued message was dropped.</summary>
internal enum DropReason
{
    QueueFull,
    Stale,
    Closed,
}

/// <summary>
/// The bounded send queue: a <see cref="Channel{T}"/> holds the messages in order, and the bounds (count and
/// bytes, which a channel alone cannot express) are enforced here under one lock.
/// </summary>
/// <remarks>
/// A message larger than the byte bound is still accepted when the queue is empty, so that one message of any
/// size the application may send always gets through. Once <see cref="Complete"/> is called, no message is
/// accepted (waiting senders included): they throw <see cref="LifelineClosedException"/> and release their buffer;
/// what was already queued can still be dequeued, then <see cref="DequeueAsync"/> returns null.
/// </remarks>
internal sealed class SendQueue
{
    private readonly Channel<OutgoingMessage> _channel = Channel.CreateUnbounded<OutgoingMessage>(
        new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });

    private readonly SendQueueOptions _options;
    private readonly Action<DropReason> _onDrop;
    private readonly Lock _lock = new();
    private int _count;
    private long _bytes;
    private string? _closedBecause;
    private TaskCompletionSource? _spaceFreed;
    private OutgoingMessage? _first;
    private bool _taken;

    public SendQueue(SendQueueOptions options, Action<DropReason> onDrop)
    {
        _options = options;
        _onDrop = onDrop;
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>True once <see cref="Complete"/> was called.</summary>
    public bool IsCompleted
    {
        get
        {
            lock (_lock)
            {
                return _closedBecause is not null;
            }
        }
    }

    /// <summary>Adds a message, or waits, drops or fails as the full mode says. Takes ownership of the message's buffer.</summary>
    /// <exception cref="LifelineClosedException">The queue was completed (the client is stopping or closed).</exception>
    public async ValueTask EnqueueAsync(OutgoingMessage message, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task waitForSpace;
            lock (_lock)
            {
                if (_closedBecause is { } why)
                {
                    message.Release();
                    throw new LifelineClosedException(why);
                }

                if (Fits(message))
                {
                    Add(message);
                    return;
                }

                switch (_options.FullMode)
                {
                    case SendQueueFullMode.Fail:
                        message.Release();
                        throw new SendQueueFullException(
                            $"The send queue is full ({_count} messages, {_bytes} bytes; limits {_options.MaxMessages} and {_options.MaxBytes}). " +
                            "Wait for the connection, raise the limits, or choose SendQueueFullMode.Wait or DropOldest.");
                    case SendQueueFullMode.DropOldest:
                        while (!Fits(message) && _channel.Reader.TryRead(out var oldest))
                        {
                            Remove(oldest);
                            oldest.Release();
                            _onDrop(DropReason.QueueFull);
                        }

                        Add(message);
                        return;
                    default:
                        _spaceFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        waitForSpace = _spaceFreed.Task;
                        break;
                }
            }

            try
            {
                await waitForSpace.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                message.Release();
                throw;
            }
        }
    }

    /// <summary>
    /// True when a send may bypass the queue and write at once: nothing is queued, the send loop holds no message
    /// (so nothing accepted earlier is still unwritten), and the queue is not completed.
    /// </summary>
    public bool CanWriteDirect
    {
        get
        {
            lock (_lock)
            {
                return _count == 0 && !_taken && _closedBecause is null;
            }
        }
    }

    /// <summary>The send loop is done with the message it took (written, dropped, or kept for the next connection is not "done").</summary>
    public void Untake()
    {
        lock (_lock)
        {
            _taken = false;
        }
    }

    /// <summary>
    /// A direct write failed (the connection was lost under it): the message goes first in line, ahead of anything
    /// queued meanwhile, and is written after the next connection. Takes ownership of the message.
    /// </summary>
    /// <exception cref="LifelineClosedException">The queue was completed meanwhile.</exception>
    public void PutFirst(OutgoingMessage message)
    {
        lock (_lock)
        {
            if (_closedBecause is { } why)
            {
                message.Release();
                throw new LifelineClosedException(why);
            }

            _first = message;
            _count++;
            _bytes += message.Length;
        }
    }

    /// <summary>The next message, or null once the queue is completed and empty.</summary>
    public async ValueTask<OutgoingMessage?> DequeueAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_lock)
            {
                if (_first is { } first)
                {
                    _first = null;
                    Remove(first);
                    _taken = true;
                    return first;
                }

                if (_channel.Reader.TryRead(out var message))
                {
                    Remove(message);
                    _taken = true;
                    return message;
                }
            }

            if (!await _channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                lock (_lock)
                {
                    if (_first is null)
                    {
                        return null;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Refuses every later send, and every send waiting for room, with <see cref="LifelineClosedException"/>
    /// carrying <paramref name="reason"/>. Messages already queued stay until dequeued or <see cref="Clear"/>ed.
    /// </summary>
    public void Complete(string reason)
    {
        lock (_lock)
        {
            if (_closedBecause is not null)
            {
                return;
            }

            _closedBecause = reason;
            _channel.Writer.TryComplete();
            var waiters = _spaceFreed;
            _spaceFreed = null;
            waiters?.TrySetResult();
        }
    }

    /// <summary>Drops everything still queued (the client closed for good), counting each as dropped.</summary>
    public void Clear()
    {
        OutgoingMessage? first;
        lock (_lock)
        {
            first = _first;
            _first = null;
            if (first is not null)
            {
                Remove(first);
            }
        }

        if (first is not null)
        {
            first.Release();
            _onDrop(DropReason.Closed);
        }

        while (_channel.Reader.TryRead(out var message))
        {
            lock (_lock)
            {
                Remove(message);
            }

            message.Release();
            _onDrop(DropReason.Closed);
        }
    }

    // An empty queue takes one message of any size: the byte bound limits what piles up, not what can be sent.
    private bool Fits(OutgoingMessage message) =>
        _count == 0 || (_count + 1 <= _options.MaxMessages && _bytes + message.Length <= _options.MaxBytes);

    private void Add(OutgoingMessage message)
    {
        _count++;
        _bytes += message.Length;
        _channel.Writer.TryWrite(message); // unbounded and not completed (checked under the lock): always succeeds
    }

    // Called under _lock.
    private void Remove(OutgoingMessage message)
    {
        _count--;
        _bytes -= message.Length;
        var waiters = _spaceFreed;
        _spaceFreed = null;
        waiters?.TrySetResult();
    }
}
