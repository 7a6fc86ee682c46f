using System.Net.WebSockets;
using Lifeline.Client;

namespace Lifeline.Tests.Client;

public class SendQueueTests
{
    private static OutgoingMessage Message(int size, byte fill = 1) =>
        new(Enumerable.Repeat(fill, size).ToArray(), WebSocketMessageType.Binary, 0);

    [Fact]
    public async Task DropOldest_OverTheMessageBound_DropsFromTheHeadAndCounts()
    {
        var drops = new List<DropReason>();
        var queue = new SendQueue(new SendQueueOptions { MaxMessages = 2, FullMode = SendQueueFullMode.DropOldest }, drops.Add);

        await queue.EnqueueAsync(Message(1, 1), default);
        await queue.EnqueueAsync(Message(1, 2), default);
        await queue.EnqueueAsync(Message(1, 3), default);

        Assert.Equal([DropReason.QueueFull], drops);
        Assert.Equal(2, queue.Count);
        Assert.Equal(2, (await queue.DequeueAsync(default))!.Data.Span[0]);
        Assert.Equal(3, (await queue.DequeueAsync(default))!.Data.Span[0]);
    }

    [Fact]
    public async Task DropOldest_OverTheByteBound_DropsUntilItFits()
    {
        var drops = 0;
        var queue = new SendQueue(new SendQueueOptions { MaxBytes = 10, FullMode = SendQueueFullMode.DropOldest }, _ => drops++);
        await queue.EnqueueAsync(Message(4), default);
        await queue.EnqueueAsync(Message(4), default);

        await queue.EnqueueAsync(Message(6), default);

        Assert.Equal(1, drops);
        Assert.Equal(10, queue.Bytes);
    }

    [Fact]
    public async Task Fail_WhenFull_ThrowsAndKeepsTheQueue()
    {
        var queue = new SendQueue(new SendQueueOptions { MaxMessages = 1, FullMode = SendQueueFullMode.Fail }, _ => { });
        await queue.EnqueueAsync(Message(1), default);

        var error = await Assert.ThrowsAsync<SendQueueFullException>(() => queue.EnqueueAsync(Message(1), default).AsTask());
        Assert.Contains("send queue is full", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public async Task Wait_WhenFull_CompletesOnceSpaceIsFreed()
    {
        var queue = new SendQueue(new SendQueueOptions { MaxMessages = 1, FullMode = SendQueueFullMode.Wait }, _ => { });
        await queue.EnqueueAsync(Message(1, 1), default);

        var waiting = queue.EnqueueAsync(Message(1, 2), default).AsTask();
        Assert.False(waiting.IsCompleted);

        Assert.Equal(1, (await queue.DequeueAsync(default))!.Data.Span[0]);
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, (await queue.DequeueAsync(default))!.Data.Span[0]);
    }

    [Fact]
    public async Task Wait_Cancelled_Throws()
    {
        var queue = new SendQueue(new SendQueueOptions { MaxMessages = 1 }, _ => { });
        await queue.EnqueueAsync(Message(1), default);
        using var cts = new CancellationTokenSource();

        var waiting = queue.EnqueueAsync(Message(1), cts.Token).AsTask();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public async Task Enqueue_MessageLargerThanTheByteBound_IsAcceptedIntoAnEmptyQueue()
    {
        var queue = new SendQueue(new SendQueueOptions { MaxBytes = 8, FullMode = SendQueueFullMode.Fail }, _ => { });

        await queue.EnqueueAsync(Message(4 * 1024 * 1024), default);

        Assert.Equal(4 * 1024 * 1024, queue.Bytes);
        await Assert.ThrowsAsync<SendQueueFullException>(() => queue.EnqueueAsync(Message(1), default).AsTask());
    }

    [Fact]
    public async Task Complete_WakesAWaitingSender_WithTheClosedExceptionAndReleasesItsBuffer()
    {
        var queue = new SendQueue(new SendQueueOptions { MaxMessages = 1 }, _ => { });
        await queue.EnqueueAsync(Message(1), default);
        var waitingMessage = Message(1);
        var waiting = queue.EnqueueAsync(waitingMessage, default).AsTask();
        Assert.False(waiting.IsCompleted);

        queue.Complete("stopping");

        var error = await Assert.ThrowsAsync<LifelineClosedException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("stopping", error.Message);
        Assert.Throws<ObjectDisposedException>(() => waitingMessage.Data);
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public async Task Complete_QueuedMessagesStillDequeue_ThenNull()
    {
        var queue = new SendQueue(new SendQueueOptions(), _ => { });
        await queue.EnqueueAsync(Message(1, 7), default);
        queue.Complete("stopping");

        await Assert.ThrowsAsync<LifelineClosedException>(() => queue.EnqueueAsync(Message(1), default).AsTask());
        Assert.Equal(7, (await queue.DequeueAsync(default))!.Data.Span[0]);
        Assert.Null(await queue.DequeueAsync(default).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Options_OutOfRange_Throw()
    {
        var options = new SendQueueOptions();
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxMessages = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxBytes = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxAge = TimeSpan.Zero);
    }
}
