using System.Net.WebSockets;
using Lifeline.Client;

namespace Lifeline.Tests.Client;

public class SendQueueTests
{
    private static OutgoingMessage Message(int size, byte fill = 1) =>
        new(Enumerable.Repeat(fill, size).ToArray(), WebSocketMessageType.Binary, 0);

    private static SendQueue Queue(SendQueueOptions options, Action<DropReason>? onDrop = null) =>
        new(options, new Writers(onDrop), new Lock());

    // What the writer would take next.
    private static byte Next(SendQueue queue)
    {
        Assert.Equal(TakeResult.Message, queue.TakeNext(out var message));
        return message!.Data.Span[0];
    }

    /// <summary>The queue's owner: writer starts are counted; the test plays the writer.</summary>
    private sealed class Writers(Action<DropReason>? onDrop = null) : ISendQueueOwner
    {
        public int Started { get; private set; }

        public void OnDropped(DropReason reason) => onDrop?.Invoke(reason);

        public void StartWriter() => Started++;
    }

    [Fact]
    public async Task Take_KeepsTheOrderAccepted_AndAFailedDirectWriteGoesFirst()
    {
        var queue = Queue(new SendQueueOptions());
        await queue.EnqueueAsync(Message(1, 1), default);
        await queue.EnqueueAsync(Message(1, 2), default);
        queue.PutFirst(Message(1, 9));
        await queue.EnqueueAsync(Message(1, 3), default);

        Assert.Equal(4, queue.Count);
        Assert.Equal([9, 1, 2, 3], new[] { Next(queue), Next(queue), Next(queue), Next(queue) });
        Assert.Equal(TakeResult.Empty, queue.TakeNext(out var none));
        Assert.Null(none);
        Assert.Equal(0, queue.Count);
        Assert.Equal(0, queue.Bytes);
    }

    [Fact]
    public async Task Writer_StartsOnlyWhileOpen_OnceForABurst_AndAgainAfterItFoundTheQueueEmpty()
    {
        var writers = new Writers();
        var queue = new SendQueue(new SendQueueOptions(), writers, new Lock());

        await queue.EnqueueAsync(Message(1, 1), default); // disconnected: it waits for the connection
        Assert.Equal(0, writers.Started);

        queue.Open(pending: false);
        Assert.Equal(1, writers.Started);
        Assert.False(queue.CanWriteDirect);
        await queue.EnqueueAsync(Message(1, 2), default); // the running writer takes it
        Assert.Equal(1, writers.Started);

        Assert.Equal([1, 2], new[] { Next(queue), Next(queue) });
        Assert.False(queue.CanWriteDirect); // the writer may still be writing the last one
        Assert.Equal(TakeResult.Empty, queue.TakeNext(out _));
        Assert.True(queue.CanWriteDirect);

        await queue.EnqueueAsync(Message(1, 3), default);
        Assert.Equal(2, writers.Started);
        Assert.Equal(3, Next(queue));
    }

    [Fact]
    public async Task EnqueueUntilWritten_WhileOpen_WaitsForTheWriter_WhileShutOrDown_CompletesOnceQueued()
    {
        // A sender that awaits each send must not keep the queue busy for good: while the connection takes writes it
        // waits until the writer wrote its message. While there is no connection, queued is all it waits for.
        var queue = new SendQueue(new SendQueueOptions(), new Writers(), new Lock());
        await queue.EnqueueAsync(Message(1, 1), default, untilWritten: true).AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // down

        queue.Open(pending: false);
        var second = Message(1, 2);
        var waiting = queue.EnqueueAsync(second, default, untilWritten: true).AsTask();
        Assert.False(waiting.IsCompleted);
        Assert.Equal([1, 2], new[] { Next(queue), Next(queue) });
        Assert.False(waiting.IsCompleted); // taken is not written
        second.TakeWritten()!.TrySetResult(); // the writer wrote it
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));

        var third = queue.EnqueueAsync(Message(1, 3), default, untilWritten: true).AsTask();
        Assert.False(third.IsCompleted);
        _ = queue.Shut(); // the connection ended with it still queued: it waits for the next one, its sender does not
        await third.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, queue.Count);
        await queue.EnqueueAsync(Message(1, 4), default, untilWritten: true).AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // shut: queued is enough
        Assert.Equal(2, queue.Count);
    }

    [Fact]
    public async Task WriterFailed_WaitingSendersGoOn_AndLaterOnesDoNotWaitUntilTheNextOpen()
    {
        var writers = new Writers();
        var queue = new SendQueue(new SendQueueOptions(), writers, new Lock());
        queue.Open(pending: false);
        var waiting = queue.EnqueueAsync(Message(1, 1), default, untilWritten: true).AsTask();
        Assert.Equal(1, writers.Started);

        queue.WriterFailed(); // the socket failed under the writer; the connection's end may be a while coming
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        await queue.EnqueueAsync(Message(1, 2), default, untilWritten: true).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, writers.Started); // no writer for a connection that takes no more writes
        Assert.Equal(2, queue.Count);

        queue.Open(pending: false); // the next connection writes both
        Assert.Equal(2, writers.Started);
        Assert.Equal([1, 2], new[] { Next(queue), Next(queue) });
    }

    [Fact]
    public async Task EnqueueUntilWritten_DroppedMessage_ItsSenderGoesOn()
    {
        var queue = new SendQueue(new SendQueueOptions(), new Writers(), new Lock());
        queue.Open(pending: false);
        var waiting = queue.EnqueueAsync(Message(1, 1), default, untilWritten: true).AsTask();
        Assert.False(waiting.IsCompleted);
        queue.Complete("stopping");
        queue.Clear();
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Open_StartsTheWriterForAMessageLeftInFlight_NotForNothing()
    {
        var writers = new Writers();
        var queue = new SendQueue(new SendQueueOptions(), writers, new Lock());

        queue.Open(pending: false);
        Assert.Equal(0, writers.Started);
        Assert.True(queue.CanWriteDirect);
        await queue.Shut();

        queue.Open(pending: true);
        Assert.Equal(1, writers.Started);
        Assert.False(queue.CanWriteDirect);
    }

    [Fact]
    public async Task Shut_WaitsForTheRunningWriter_AndNoWriterStartsUntilTheNextOpen()
    {
        var writers = new Writers();
        var queue = new SendQueue(new SendQueueOptions(), writers, new Lock());
        queue.Open(pending: false);
        Assert.True(queue.Shut().IsCompletedSuccessfully); // no writer: nothing to wait for
        queue.Open(pending: false);
        await queue.EnqueueAsync(Message(1, 1), default);

        var running = queue.Shut();
        Assert.False(running.IsCompleted);
        Assert.Equal(1, Next(queue)); // the writer took it, then the connection failed under the write
        queue.WriterEnded();
        await running.WaitAsync(TimeSpan.FromSeconds(10));
        await queue.EnqueueAsync(Message(1, 2), default);
        Assert.Equal(1, writers.Started);

        queue.Open(pending: true);
        Assert.Equal(2, writers.Started);
        Assert.Equal(2, Next(queue));
    }

    [Fact]
    public async Task Complete_WhileOpen_StartsTheWriterForTheCloseFrame_AfterWhatIsQueued()
    {
        var writers = new Writers();
        var queue = new SendQueue(new SendQueueOptions(), writers, new Lock());
        queue.Open(pending: false);
        queue.Complete("stopping");
        Assert.Equal(1, writers.Started);
        Assert.Equal(TakeResult.Completed, queue.TakeNext(out _));
        var shut = queue.Shut();
        Assert.False(shut.IsCompleted); // the writer is writing the Close frame
        queue.WriterEnded();
        await shut.WaitAsync(TimeSpan.FromSeconds(10));
        queue.Open(pending: true); // the Close step was taken: nothing starts again
        Assert.Equal(1, writers.Started);

        var stopping = new SendQueue(new SendQueueOptions(), writers, new Lock());
        await stopping.EnqueueAsync(Message(1, 5), default);
        stopping.Complete("stopping"); // not open: nothing starts
        Assert.Equal(1, writers.Started);
        stopping.Open(pending: false); // a connection that opens for sends after the stop (its hook ran meanwhile)
        Assert.Equal(2, writers.Started);
        Assert.Equal(5, Next(stopping));
        Assert.Equal(TakeResult.Completed, stopping.TakeNext(out _));
        Assert.False(stopping.CanWriteDirect);
    }

    [Fact]
    public async Task Clear_DropsEverything_IncludingTheMessagePutFirst()
    {
        var drops = new List<DropReason>();
        var queue = Queue(new SendQueueOptions(), drops.Add);
        var queued = Message(1);
        var first = Message(1);
        await queue.EnqueueAsync(queued, default);
        queue.PutFirst(first);
        queue.Complete("closed");

        queue.Clear();

        Assert.Equal([DropReason.Closed, DropReason.Closed], drops);
        Assert.Equal(0, queue.Count);
        Assert.Equal(0, queue.Bytes);
        Assert.Throws<ObjectDisposedException>(() => queued.Data);
        Assert.Throws<ObjectDisposedException>(() => first.Data);
        Assert.Equal(TakeResult.Completed, queue.TakeNext(out _));
    }

    [Fact]
    public async Task Wait_ASenderWaitingForRoom_IsWokenByTheWriterTakingAMessage_AndKeepsItsPlace()
    {
        var writers = new Writers();
        var queue = new SendQueue(new SendQueueOptions { MaxMessages = 2, FullMode = SendQueueFullMode.Wait }, writers, new Lock());
        await queue.EnqueueAsync(Message(1, 1), default);
        await queue.EnqueueAsync(Message(1, 2), default);
        var waiting = queue.EnqueueAsync(Message(1, 3), default).AsTask();
        Assert.False(waiting.IsCompleted);

        queue.Open(pending: false);
        Assert.Equal(1, Next(queue));
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([2, 3], new[] { Next(queue), Next(queue) });
        Assert.Equal(1, writers.Started);
    }

    [Fact]
    public async Task DropOldest_OverTheMessageBound_DropsFromTheHeadAndCounts()
    {
        var drops = new List<DropReason>();
        var queue = Queue(new SendQueueOptions { MaxMessages = 2, FullMode = SendQueueFullMode.DropOldest }, drops.Add);

        await queue.EnqueueAsync(Message(1, 1), default);
        await queue.EnqueueAsync(Message(1, 2), default);
        await queue.EnqueueAsync(Message(1, 3), default);

        Assert.Equal([DropReason.QueueFull], drops);
        Assert.Equal(2, queue.Count);
        Assert.Equal(2, Next(queue));
        Assert.Equal(3, Next(queue));
    }

    [Fact]
    public async Task DropOldest_OverTheByteBound_DropsUntilItFits()
    {
        var drops = 0;
        var queue = Queue(new SendQueueOptions { MaxBytes = 10, FullMode = SendQueueFullMode.DropOldest }, _ => drops++);
        await queue.EnqueueAsync(Message(4), default);
        await queue.EnqueueAsync(Message(4), default);

        await queue.EnqueueAsync(Message(6), default);

        Assert.Equal(1, drops);
        Assert.Equal(10, queue.Bytes);
    }

    [Fact]
    public async Task Fail_WhenFull_ThrowsAndKeepsTheQueue()
    {
        var queue = Queue(new SendQueueOptions { MaxMessages = 1, FullMode = SendQueueFullMode.Fail });
        await queue.EnqueueAsync(Message(1), default);

        var error = await Assert.ThrowsAsync<SendQueueFullException>(() => queue.EnqueueAsync(Message(1), default).AsTask());
        Assert.Contains("send queue is full", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public async Task Wait_WhenFull_CompletesOnceSpaceIsFreed()
    {
        var queue = Queue(new SendQueueOptions { MaxMessages = 1, FullMode = SendQueueFullMode.Wait });
        await queue.EnqueueAsync(Message(1, 1), default);

        var waiting = queue.EnqueueAsync(Message(1, 2), default).AsTask();
        Assert.False(waiting.IsCompleted);

        Assert.Equal(1, Next(queue));
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, Next(queue));
    }

    [Fact]
    public async Task Wait_Cancelled_Throws()
    {
        var queue = Queue(new SendQueueOptions { MaxMessages = 1 });
        await queue.EnqueueAsync(Message(1), default);
        using var cts = new CancellationTokenSource();

        var waiting = queue.EnqueueAsync(Message(1), cts.Token).AsTask();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public async Task Wait_CancelledBehindAnotherWaiter_LeavesTheLineAtOnce()
    {
        // A sender that retries with a timeout through a long outage. Before, each cancelled call stayed in line until it
        // reached the front, behind the first waiter here for as long as the queue stayed full.
        var queue = Queue(new SendQueueOptions { MaxMessages = 1 });
        await queue.EnqueueAsync(Message(1, 1), default);
        var first = queue.EnqueueAsync(Message(1, 2), default).AsTask();
        for (var i = 0; i < 100; i++)
        {
            using var cts = new CancellationTokenSource();
            var retry = queue.EnqueueAsync(Message(1, 3), cts.Token).AsTask();
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => retry);
        }

        Assert.Equal(1, queue.WaitingSenders);
        var last = queue.EnqueueAsync(Message(1, 4), default).AsTask();
        Assert.Equal(2, queue.WaitingSenders);

        // The line still lets in the waiters left, in call order.
        Assert.Equal(1, Next(queue));
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, Next(queue));
        await last.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(4, Next(queue));
        Assert.Equal(0, queue.WaitingSenders);
    }

    [Fact]
    public async Task Enqueue_MessageLargerThanTheByteBound_IsAcceptedIntoAnEmptyQueue()
    {
        var queue = Queue(new SendQueueOptions { MaxBytes = 8, FullMode = SendQueueFullMode.Fail });

        await queue.EnqueueAsync(Message(4 * 1024 * 1024), default);

        Assert.Equal(4 * 1024 * 1024, queue.Bytes);
        await Assert.ThrowsAsync<SendQueueFullException>(() => queue.EnqueueAsync(Message(1), default).AsTask());
    }

    [Fact]
    public async Task Complete_WakesAWaitingSender_WithTheClosedExceptionAndReleasesItsBuffer()
    {
        var queue = Queue(new SendQueueOptions { MaxMessages = 1 });
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
        var queue = Queue(new SendQueueOptions());
        await queue.EnqueueAsync(Message(1, 7), default);
        queue.Complete("stopping");

        await Assert.ThrowsAsync<LifelineClosedException>(() => queue.EnqueueAsync(Message(1), default).AsTask());
        Assert.Equal(7, Next(queue));
        Assert.Equal(TakeResult.Completed, queue.TakeNext(out _));
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
