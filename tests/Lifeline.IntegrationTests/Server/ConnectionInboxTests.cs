using System.Net.WebSockets;
using System.Threading.Channels;
using Lifeline.AspNetCore;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

/// <summary>The purpose-built Messages queue must read exactly like the bounded channel it replaced.</summary>
public sealed class ConnectionInboxTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static LifelineMessage Text(string text) => new(WebSocketMessageType.Text, System.Text.Encoding.UTF8.GetBytes(text));

    private static ConnectionInbox Inbox(int capacity, CancellationToken closing = default) => new(capacity, long.MaxValue, closing);

    [Fact]
    public void TryWrite_BoundedInBytes_OneLargeMessageStillFitsAnEmptyInbox()
    {
        var inbox = new ConnectionInbox(100, 10, CancellationToken.None);
        Assert.True(inbox.TryWrite(new LifelineMessage(WebSocketMessageType.Binary, new byte[25]))); // larger than the bound, alone
        Assert.False(inbox.TryWrite(new LifelineMessage(WebSocketMessageType.Binary, new byte[1])));
        Assert.False(inbox.WaitForRoomAsync(1, CancellationToken.None).IsCompleted);
        Assert.True(inbox.TryRead(out _));
        Assert.True(inbox.TryWrite(Text("12345")));
        Assert.True(inbox.TryWrite(Text("12345")));
        Assert.False(inbox.TryWrite(Text("1")));
        Assert.True(inbox.TryRead(out _));
        Assert.True(inbox.WaitForRoomAsync(5, CancellationToken.None).IsCompleted);
        Assert.False(inbox.WaitForRoomAsync(6, CancellationToken.None).IsCompleted);
    }

    [Fact]
    public async Task AWaitOnClosing_EndsCancelled_WhenTheConnectionSaysClosingWasCancelled()
    {
        using var closing = new CancellationTokenSource();
        var inbox = Inbox(10, closing.Token);
        var wait = inbox.WaitToReadAsync(closing.Token).AsTask();
        Assert.False(wait.IsCompleted);

        await closing.CancelAsync();
        inbox.ClosingCancelled();
        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Bound));
        Assert.Equal(closing.Token, thrown.CancellationToken);

        // A wait on Closing after the cancellation ends at once; messages stay readable with TryRead.
        Assert.True(inbox.TryWrite(Text("a")));
        Assert.True(inbox.WaitToReadAsync(closing.Token).IsCanceled);
        Assert.True(inbox.TryRead(out _));
    }

    [Fact]
    public async Task ReadAllAsyncOnClosing_EndsWithTheCancellation_AfterTheMessagesAlreadyThere()
    {
        using var closing = new CancellationTokenSource();
        var inbox = Inbox(10, closing.Token);
        var read = new List<string>();
        var reading = Task.Run(async () =>
        {
            await foreach (var message in inbox.ReadAllAsync(closing.Token))
            {
                read.Add(message.Text);
            }
        });
        Assert.True(inbox.TryWrite(Text("a")));
        await Wait.UntilAsync(() => inbox.Count == 0, what: "the message to be read");
        await Wait.UntilAsync(() => inbox.HasParkedReader, what: "the reader parked again, on Closing");

        await closing.CancelAsync();
        inbox.ClosingCancelled();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(Bound));
        Assert.Equal(["a"], read);
    }

    [Fact]
    public async Task TryWrite_AtCapacity_RefusesUntilAReadMakesRoom()
    {
        var inbox = Inbox(2);
        Assert.True(inbox.TryWrite(Text("a")));
        Assert.True(inbox.TryWrite(Text("b")));
        Assert.False(inbox.TryWrite(Text("c")));
        Assert.Equal(2, inbox.Count);

        var room = inbox.WaitForRoomAsync(1, CancellationToken.None);
        Assert.False(room.IsCompleted);
        Assert.True(inbox.TryRead(out var first));
        Assert.Equal("a", first.Text);
        await room.WaitAsync(Bound);

        Assert.True(inbox.TryWrite(Text("c")));
        Assert.False(inbox.TryWrite(Text("d")));
        Assert.True(inbox.TryPeek(out var next));
        Assert.Equal("b", next.Text);
    }

    [Fact]
    public async Task WaitForRoom_Cancelled_EndsCancelled()
    {
        var inbox = Inbox(1);
        Assert.True(inbox.TryWrite(Text("a")));
        using var cts = new CancellationTokenSource();
        var room = inbox.WaitForRoomAsync(1, cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => room.WaitAsync(Bound));
    }

    [Fact]
    public async Task Complete_MessagesStayReadable_AndCompletionEndsAfterTheLast()
    {
        var inbox = Inbox(10);
        var completion = inbox.Completion;
        Assert.True(inbox.TryWrite(Text("a")));
        Assert.True(inbox.TryWrite(Text("b")));
        inbox.Complete();
        inbox.Complete(); // twice is fine

        Assert.False(inbox.TryWrite(Text("c")));
        Assert.False(completion.IsCompleted);
        var read = new List<string>();
        await foreach (var message in inbox.ReadAllAsync().WithCancellation(CancellationToken.None))
        {
            read.Add(message.Text);
        }

        Assert.Equal(["a", "b"], read);
        await completion.WaitAsync(Bound);
        Assert.Same(completion, inbox.Completion);
        Assert.False(await inbox.WaitToReadAsync());
    }

    [Fact]
    public async Task Complete_WhileFull_ReleasesAWaitingWriter()
    {
        var inbox = Inbox(1);
        Assert.True(inbox.TryWrite(Text("a")));
        var room = inbox.WaitForRoomAsync(1, CancellationToken.None);
        inbox.Complete();
        await room.WaitAsync(Bound);
        Assert.True(inbox.TryRead(out _));
        Assert.True(inbox.Completion.IsCompleted);
    }

    [Fact]
    public async Task ParkedWait_IsWokenByAWrite_ThenByTheEnd()
    {
        var inbox = Inbox(10);
        var wait = inbox.WaitToReadAsync().AsTask();
        Assert.False(wait.IsCompleted);
        Assert.True(inbox.TryWrite(Text("a")));
        Assert.True(await wait.WaitAsync(Bound));
        Assert.True(inbox.TryRead(out _));

        var last = inbox.WaitToReadAsync().AsTask();
        Assert.False(last.IsCompleted);
        inbox.Complete();
        Assert.False(await last.WaitAsync(Bound));
    }

    [Fact]
    public async Task ParkedWait_Cancelled_Throws_AndTheNextWaitStillGetsTheMessage()
    {
        var inbox = Inbox(10);
        using var cts = new CancellationTokenSource();
        var wait = inbox.WaitToReadAsync(cts.Token).AsTask();
        Assert.False(wait.IsCompleted);
        await cts.CancelAsync();
        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Bound));
        Assert.Equal(cts.Token, thrown.CancellationToken);

        // An already cancelled token with a message there: whatever the bounded channel does, so does the inbox.
        Assert.True(inbox.TryWrite(Text("a")));
        var channel = Channel.CreateBounded<LifelineMessage>(10);
        Assert.True(channel.Writer.TryWrite(Text("a")));
        Assert.Equal(channel.Reader.WaitToReadAsync(cts.Token).IsCanceled, inbox.WaitToReadAsync(cts.Token).IsCanceled);

        Assert.True(await inbox.WaitToReadAsync().AsTask().WaitAsync(Bound));
        Assert.True(inbox.TryRead(out var message));
        Assert.Equal("a", message.Text);

        // The reusable wait is free again and a cancelled token does not reach it any more.
        var again = inbox.WaitToReadAsync(cts.Token);
        Assert.True(again.IsCanceled);
        var next = inbox.WaitToReadAsync().AsTask();
        Assert.True(inbox.TryWrite(Text("b")));
        Assert.True(await next.WaitAsync(Bound));
    }

    [Fact]
    public async Task ReadAllAsync_Cancelled_WhileWaiting_Throws()
    {
        var inbox = Inbox(10);
        using var cts = new CancellationTokenSource();
        var reading = Task.Run(async () =>
        {
            await foreach (var message in inbox.ReadAllAsync(cts.Token))
            {
            }
        });
        await Wait.UntilAsync(() => inbox.HasParkedReader, what: "the reader parked");
        Assert.False(reading.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(Bound));
    }

    [Fact]
    public async Task TwoWaitingReaders_AreBothWoken()
    {
        var inbox = Inbox(10);
        var first = inbox.WaitToReadAsync().AsTask();
        var second = inbox.WaitToReadAsync().AsTask();
        Assert.True(inbox.TryWrite(Text("a")));
        Assert.True(await first.WaitAsync(Bound));
        Assert.True(await second.WaitAsync(Bound));

        Assert.True(inbox.TryRead(out _));
        var third = inbox.WaitToReadAsync().AsTask();
        var fourth = inbox.WaitToReadAsync().AsTask();
        inbox.Complete();
        Assert.False(await third.WaitAsync(Bound));
        Assert.False(await fourth.WaitAsync(Bound));
    }

    [Fact]
    public async Task AWriterWithBackPressure_AndAReader_PassEveryMessageInOrder()
    {
        const int Count = 20_000;
        var inbox = Inbox(4);
        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                var message = Text(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                while (!inbox.TryWrite(message))
                {
                    await inbox.WaitForRoomAsync(1, CancellationToken.None);
                }
            }

            inbox.Complete();
        });

        using var cts = new CancellationTokenSource(); // a cancellable token, as a handler's Closing is
        var expected = 0;
        await foreach (var message in inbox.ReadAllAsync(cts.Token))
        {
            Assert.True(inbox.Count <= 4);
            Assert.Equal(expected++.ToString(System.Globalization.CultureInfo.InvariantCulture), message.Text);
        }

        Assert.Equal(Count, expected);
        await writer.WaitAsync(Bound);
        await inbox.Completion.WaitAsync(Bound);
    }

    [Fact]
    public async Task ReadAllAsync_Parked_GetsEachMessage_ThenEndsWithTheInbox()
    {
        var inbox = Inbox(10);
        var read = new List<string>();
        var firstRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = Task.Run(async () =>
        {
            await foreach (var message in inbox.ReadAllAsync())
            {
                read.Add(message.Text);
                firstRead.TrySetResult();
            }
        });
        await Wait.UntilAsync(() => inbox.HasParkedReader, what: "the reader parked");
        Assert.True(inbox.TryWrite(Text("a")));
        await firstRead.Task.WaitAsync(Bound);
        await Wait.UntilAsync(() => inbox.HasParkedReader, what: "the reader parked again");
        Assert.True(inbox.TryWrite(Text("b")));
        Assert.True(inbox.TryWrite(Text("c")));
        inbox.Complete();

        await reading.WaitAsync(Bound);
        Assert.Equal(["a", "b", "c"], read);
        await inbox.Completion.WaitAsync(Bound);
    }

    [Fact]
    public async Task ReadAllAsync_WithCancellation_EndsOnEitherToken()
    {
        foreach (var cancelFirst in new[] { true, false })
        {
            var inbox = Inbox(10);
            using var first = new CancellationTokenSource();
            using var second = new CancellationTokenSource();
            var reading = Task.Run(async () =>
            {
                await foreach (var message in inbox.ReadAllAsync(first.Token).WithCancellation(second.Token))
                {
                }
            });
            await Wait.UntilAsync(() => inbox.HasParkedReader, what: "the reader parked");
            Assert.False(reading.IsCompleted);
            await (cancelFirst ? first : second).CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(Bound));
        }
    }

    [Fact]
    public async Task ReadAllAsync_AndASecondReader_ReadEveryMessageOnce()
    {
        const int Count = 20_000;
        var inbox = Inbox(4);
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        async Task LoopAsync()
        {
            await foreach (var message in inbox.ReadAllAsync())
            {
                seen.AddOrUpdate(message.Text, 1, (_, n) => n + 1);
            }
        }

        async Task WaitAndTryReadAsync()
        {
            while (await inbox.WaitToReadAsync())
            {
                if (inbox.TryRead(out var message))
                {
                    seen.AddOrUpdate(message.Text, 1, (_, n) => n + 1);
                }
            }
        }

        var readers = new[] { Task.Run(LoopAsync), Task.Run(WaitAndTryReadAsync) };
        for (var i = 0; i < Count; i++)
        {
            var message = Text(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            while (!inbox.TryWrite(message))
            {
                await inbox.WaitForRoomAsync(1, CancellationToken.None);
            }
        }

        inbox.Complete();
        await Task.WhenAll(readers).WaitAsync(Bound);
        Assert.Equal(Count, seen.Count);
        Assert.All(seen.Values, n => Assert.Equal(1, n));
    }
}
