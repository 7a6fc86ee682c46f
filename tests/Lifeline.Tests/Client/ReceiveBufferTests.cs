using System.Net.WebSockets;
using Lifeline.Client;

namespace Lifeline.Tests.Client;

public class ReceiveBufferTests
{
    private static LifelineMessage Message(int size) => new(WebSocketMessageType.Binary, new byte[size]);

    [Fact]
    public void TryWrite_OverTheByteBound_IsRefusedUntilARead()
    {
        var buffer = new ReceiveBuffer(maxMessages: 100, maxBytes: 1000);
        Assert.True(buffer.TryWrite(Message(400)));
        Assert.True(buffer.TryWrite(Message(400)));

        Assert.False(buffer.TryWrite(Message(400)));
        Assert.Equal(800, buffer.Bytes);

        Assert.True(buffer.TryRead(out _));
        Assert.True(buffer.TryWrite(Message(400)));
    }

    [Fact]
    public void TryWrite_OverTheCountBound_IsRefused()
    {
        var buffer = new ReceiveBuffer(maxMessages: 2, maxBytes: 1_000_000);
        Assert.True(buffer.TryWrite(Message(1)));
        Assert.True(buffer.TryWrite(Message(1)));
        Assert.False(buffer.TryWrite(Message(1)));
    }

    [Fact]
    public void TryWrite_OneMessageLargerThanTheByteBound_IsTakenWhenEmpty()
    {
        var buffer = new ReceiveBuffer(maxMessages: 10, maxBytes: 1000);
        Assert.True(buffer.TryWrite(Message(5000)));
        Assert.False(buffer.TryWrite(Message(1)));
    }

    [Fact]
    public async Task WriteAsync_WhenFull_CompletesAfterTheApplicationReads()
    {
        var buffer = new ReceiveBuffer(maxMessages: 1, maxBytes: 1000);
        Assert.True(buffer.TryWrite(Message(10)));
        var waiting = buffer.WriteAsync(Message(10), default).AsTask();
        Assert.False(waiting.IsCompleted);

        var first = await buffer.ReadAsync();

        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(10, first.Data.Length);
        Assert.Equal(1, buffer.Count);
    }
}
