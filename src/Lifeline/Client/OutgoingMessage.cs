using System.Buffers;
using System.Net.WebSockets;

namespace Lifeline.Client;

/// <summary>A queued send: a pooled copy of the caller's bytes, returned to the pool exactly once.</summary>
internal sealed class OutgoingMessage
{
    private byte[]? _buffer;

    public OutgoingMessage(ReadOnlySpan<byte> data, WebSocketMessageType type, long enqueuedAt)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, data.Length));
        data.CopyTo(_buffer);
        Length = data.Length;
        Type = type;
        EnqueuedAt = enqueuedAt;
    }

    public int Length { get; }

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
    }
}
