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
internal sealed class SendQueue
{
    private readonly Channel<OutgoingMessage> _channel = Channel.CreateUnbounded<OutgoingMessage>(
        new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });

    private readonly SendQueueOptions _options;
    private readonly Action<DropReason> _onDrop;
    private readonly Lock _lock = new();
    private int _count;
    private long _bytes;
    private TaskCompletionSource? _spaceFreed;

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

    public async ValueTask EnqueueAsync(OutgoingMessage message, CancellationToken cancellationToken)
    {
        if (message.Length > _options.MaxBytes)
        {
            message.Release();
            throw new ArgumentException(
                $"The message is {message.Length} bytes but the send queue holds at most {_options.MaxBytes}; raise SendQueue.MaxBytes or send smaller messages.",
                nameof(message));
        }

        while (true)
        {
            Task waitForSpace;
            lock (_lock)
            {
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

    public async ValueTask<OutgoingMessage> DequeueAsync(CancellationToken cancellationToken)
    {
        var message = await _channel.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            Remove(message);
        }

        return message;
    }

    /// <summary>Drops everything still queued (the client closed for good).</summary>
    public void Clear()
    {
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

    private bool Fits(OutgoingMessage message) =>
        _count + 1 <= _options.MaxMessages && _bytes + message.Length <= _options.MaxBytes;

    private void Add(OutgoingMessage message)
    {
        _count++;
        _bytes += message.Length;
        _channel.Writer.TryWrite(message); // unbounded: always succeeds
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
