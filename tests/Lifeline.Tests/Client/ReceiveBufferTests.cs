using System.Buffers;
using System.Net.WebSockets;
using Lifeline.Client;

namespace Lifeline.Tests.Client;

public class ReceiveBufferTests
{
    private static void Add(ReceiveBuffer buffer, int size) =>
        buffer.Enqueue(ArrayPool<byte>.Shared.Rent(Math.Max(1, size)), size, WebSocketMessageType.Binary);

    [Fact]
    public void HasRoom_AtTheByteBound_IsFalseUntilARead()
    {
        var buffer = new ReceiveBuffer(maxMessages: 100, maxBytes: 1000);
        Add(buffer, 400);
        Add(buffer, 400);
        Assert.True(buffer.HasRoom);
        Add(buffer, 400);

        Assert.False(buffer.HasRoom);
        Assert.True(buffer.TryTake(new byte[400], out var result));
        Assert.Equal(LifelineReceiveStatus.Message, result.Status);
        Assert.True(buffer.HasRoom);
    }

    [Fact]
    public void HasRoom_AtTheCountBound_IsFalse()
    {
        var buffer = new ReceiveBuffer(maxMessages: 2, maxBytes: 1_000_000);
        Add(buffer, 1);
        Add(buffer, 1);
        Assert.False(buffer.HasRoom);
    }

    [Fact]
    public void Enqueue_OneMessageLargerThanTheByteBound_IsTakenWhenThereIsRoom()
    {
        var buffer = new ReceiveBuffer(maxMessages: 10, maxBytes: 1000);
        Add(buffer, 5000);
        Assert.False(buffer.HasRoom);
        Assert.Equal(1, buffer.Count);
    }

    [Fact]
    public void TryTake_DestinationTooSmall_KeepsTheMessageFirst()
    {
        var buffer = new ReceiveBuffer(maxMessages: 10, maxBytes: 1000);
        Add(buffer, 10);
        Add(buffer, 3);

        Assert.True(buffer.TryTake(new byte[4], out var tooSmall));
        Assert.Equal(new LifelineReceiveResult(LifelineReceiveStatus.DestinationTooSmall, 10, WebSocketMessageType.Binary), tooSmall);
        Assert.True(buffer.TryTake(new byte[10], out var first));
        Assert.Equal(10, first.Count);
        Assert.True(buffer.TryTake(new byte[4], out var second));
        Assert.Equal(3, second.Count);
        Assert.False(buffer.TryTake(new byte[4], out _));
    }

    [Fact]
    public void Drained_CompletesOnlyWhenCompletedAndEmpty()
    {
        var buffer = new ReceiveBuffer(maxMessages: 10, maxBytes: 1000);
        buffer.PutFirst(ArrayPool<byte>.Shared.Rent(5), 5, WebSocketMessageType.Text);
        buffer.Complete();
        Assert.False(buffer.Drained.IsCompleted);

        Assert.True(buffer.TryTakeMessage(out var message, remove: true));
        Assert.Equal(WebSocketMessageType.Text, message.Type);
        Assert.True(buffer.Drained.IsCompleted);
    }
}
