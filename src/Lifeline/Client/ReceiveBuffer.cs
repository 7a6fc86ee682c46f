using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;

namespace Lifeline.Client;

/// <summary>
/// Received messages waiting for the application, bounded by count and by payload bytes. The receive loop is the
/// only writer and waits while the buffer is full (backpressure: it stops reading the socket); the application
/// reads through this <see cref="ChannelReader{T}"/>, and every read frees room.
/// </summary>
/// <remarks>
/// One message larger than the byte bound is still taken when the buffer is empty, so a message up to
/// <see cref="LifelineClientOptions.MaxMessageSize"/> always gets through.
/// </remarks>
internal sealed class ReceiveBuffer : ChannelReader<LifelineMessage>
{
    private readonly Channel<LifelineMessage> _channel = Channel.CreateUnbounded<LifelineMessage>(
        new UnboundedChannelOptions { SingleWriter = true });

    private readonly int _maxMessages;
    private readonly long _maxBytes;
    private readonly Lock _lock = new();
    private int _count;
    private long _bytes;
    private TaskCompletionSource? _roomFreed;

    public ReceiveBuffer(int maxMessages, long maxBytes)
    {
        _maxMessages = maxMessages;
        _maxBytes = maxBytes;
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

    public override Task Completion => _channel.Reader.Completion;

    public override bool CanCount => true;

    public override int Count => _channel.Reader.Count;

    public override bool CanPeek => true;

    /// <summary>Adds a message if there is room now; the receive loop calls this first to avoid a wait.</summary>
    public bool TryWrite(LifelineMessage message)
    {
        lock (_lock)
        {
            if (!HasRoom(message.Data.Length))
            {
                return false;
            }

            _count++;
            _bytes += message.Data.Length;
        }

        if (!_channel.Writer.TryWrite(message))
        {
            Released(message.Data.Length); // completed: the client closed meanwhile
            return true;
        }

        return true;
    }

    /// <summary>Waits for room, then adds the message.</summary>
    public async ValueTask WriteAsync(LifelineMessage message, CancellationToken cancellationToken)
    {
        while (!TryWrite(message))
        {
            Task room;
            lock (_lock)
            {
                if (HasRoom(message.Data.Length))
                {
                    continue;
                }

                _roomFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                room = _roomFreed.Task;
            }

            await room.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Complete() => _channel.Writer.TryComplete();

    public override bool TryRead([MaybeNullWhen(false)] out LifelineMessage item)
    {
        if (!_channel.Reader.TryRead(out item))
        {
            return false;
        }

        Released(item.Data.Length);
        return true;
    }

    public override bool TryPeek([MaybeNullWhen(false)] out LifelineMessage item) => _channel.Reader.TryPeek(out item);

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) =>
        _channel.Reader.WaitToReadAsync(cancellationToken);

    // Called under _lock.
    private bool HasRoom(int length) => _count == 0 || (_count < _maxMessages && _bytes + length <= _maxBytes);

    private void Released(int length)
    {
        TaskCompletionSource? waiters;
        lock (_lock)
        {
            _count--;
            _bytes -= length;
            waiters = _roomFreed;
            _roomFreed = null;
        }

        waiters?.TrySetResult();
    }
}
