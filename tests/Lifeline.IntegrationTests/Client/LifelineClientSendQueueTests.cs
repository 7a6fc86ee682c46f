using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.FaultProxy;
using Lifeline.FaultProxy.Toxics;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Client;

public sealed class LifelineClientSendQueueTests
{
    private static async Task<(TestWebSocketServer Server, LifelineClient Client, StateRecorder States)> ConnectedThenServerDownAsync(Action<LifelineClientOptions>? configure = null)
    {
        var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        configure?.Invoke(options);
        var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await server.StopAsync();
        await states.NextAsync(LifelineClientState.Reconnecting);
        return (server, client, states);
    }

    [Fact]
    public async Task DirectWriteStalledThenLinkLost_ItGoesOutBeforeTheMessageQueuedBehindIt()
    {
        // A direct write stalls (the link stops taking bytes) and holds the socket; a later send is queued and taken by
        // the queue's writer, which waits for the socket. The link is then lost: both writes fail. After the reconnect
        // the direct one (accepted first) must still go first; it used to go second.
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        await using var client = new LifelineClient(ClientTestOptions.Fast(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/count")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var stall = new BandwidthToxic(1);
        proxy.AddToxic(stall, Direction.Upstream);

        const int Big = 16 * 1024 * 1024; // more than the socket buffers on the way can hold
        var first = client.SendAsync(new byte[Big]).AsTask();
        using var queued = new CancellationTokenSource();
        await client.SendAsync(new byte[10], cancellationToken: queued.Token); // a cancellable token always goes through the queue
        await Wait.UntilAsync(() => client.HasMessageInFlight, what: "the queue's writer to take the second message");
        Assert.False(first.IsCompleted);

        proxy.RemoveToxic(stall);
        proxy.ResetAll();
        await first.WaitAsync(TimeSpan.FromSeconds(30)); // kept for the next connection: not an error
        await Wait.UntilAsync(() => server.ReceivedLengths.Count >= 2, TimeSpan.FromSeconds(60), "both messages after the reconnect");

        Assert.Equal([Big, 10], server.ReceivedLengths.ToArray());
    }

    [Fact]
    public async Task MessageTheWriterHeldWhenTheLinkDied_StopWhileDown_IsCountedAsDroppedClosed()
    {
        // The queue's writer took a message and was writing it when the link died: it holds the message for the next
        // connection. The client stops before one comes: the message is dropped, and must be counted as every other
        // message a stop drops (before: released and counted nowhere).
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        await using var client = new LifelineClient(ClientTestOptions.Fast(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/count")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        proxy.AddToxic(new BandwidthToxic(1), Direction.Upstream);

        using var queued = new CancellationTokenSource();
        await client.SendAsync(new byte[16 * 1024 * 1024], cancellationToken: queued.Token); // a cancellable token always goes through the queue
        await Wait.UntilAsync(() => client.HasMessageInFlight, what: "the queue's writer to take the message");
        proxy.RefuseConnections();
        proxy.ResetAll();
        await states.NextAsync(LifelineClientState.Reconnecting);
        Assert.True(client.HasMessageInFlight);

        await client.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(1, client.Statistics.MessagesDroppedClosed);
    }

    [Fact]
    public async Task ConcurrentSendersWhileConnected_EveryMessageArrives_EachSendersInOrder()
    {
        // Sends with a token that can be cancelled always go through the queue; the others write directly when nothing is
        // queued. So the queue's writer starts and ends many times over, between direct writes. A start that got lost
        // would leave messages unwritten; two writers at once, or a direct write overtaking the queue, would break the order.
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        const int senders = 4;
        const int each = 300;
        using var never = new CancellationTokenSource();

        await Task.WhenAll(Enumerable.Range(0, senders).Select(s => Task.Run(async () =>
        {
            for (var i = 0; i < each; i++)
            {
                await client.SendTextAsync($"{s}:{i}", s % 2 == 0 ? never.Token : CancellationToken.None);
            }
        }))).WaitAsync(TimeSpan.FromSeconds(30));

        await Wait.UntilAsync(() => server.Received.Count >= senders * each, what: "every message at the server");
        var received = server.Received.ToArray();
        Assert.Equal(senders * each, received.Length);
        for (var s = 0; s < senders; s++)
        {
            var prefix = $"{s}:";
            Assert.Equal(Enumerable.Range(0, each).Select(i => prefix + i), received.Where(m => m.StartsWith(prefix, StringComparison.Ordinal)));
        }
    }

    [Fact]
    public async Task SendsNotAwaitedWhileTheQueueIsFull_GoOutInTheOrderOfTheCalls()
    {
        // Room for two queued messages (mode Wait): the third call on waits for room. Before, every waiting send woke at
        // the same freed slot and they raced for it (and a call made just then could take it first), so the server got
        // them out of call order.
        const int count = 300;
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.SendQueue.MaxMessages = 2;
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        using var never = new CancellationTokenSource(); // a cancellable token always goes through the queue

        var sends = new List<Task>(count);
        for (var i = 0; i < count; i++)
        {
            sends.Add(client.SendTextAsync(i.ToString(System.Globalization.CultureInfo.InvariantCulture), never.Token).AsTask());
        }

        await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(60));
        await Wait.UntilAsync(() => server.Received.Count >= count, TimeSpan.FromSeconds(60), "every message at the server");
        Assert.Equal(Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), server.Received.ToArray());
    }

    [Fact]
    public async Task SendWaitingForRoomIsCancelled_ItIsNotSentAndTheOthersKeepTheirOrder()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.SendQueue.MaxMessages = 1;
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await server.StopAsync(); // down: nothing leaves the queue
        await states.NextAsync(LifelineClientState.Reconnecting);

        await client.SendTextAsync("a").AsTask().WaitAsync(TimeSpan.FromSeconds(15)); // queued
        using var cancelled = new CancellationTokenSource();
        var b = client.SendTextAsync("b", cancelled.Token).AsTask(); // waits for room
        var c = client.SendTextAsync("c").AsTask(); // waits behind it
        Assert.False(b.IsCompleted);
        Assert.False(c.IsCompleted);
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => b.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.False(c.IsCompleted);

        await server.RestartAsync();
        await c.WaitAsync(TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => server.Received.Count >= 2, TimeSpan.FromSeconds(30), "both messages at the server");
        Assert.Equal(["a", "c"], server.Received.ToArray());
    }

    [Fact]
    public async Task CancelledWaitFirstInLine_ASendThatFitsBehindItIsQueuedAtOnce()
    {
        // Down, the queue holds 900 of its 1,000 bytes: a 500-byte send waits for room, and its token ends the wait.
        // Before, its place in line stayed taken: a 10-byte send, which fits, waited behind it until the next connection.
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/count"));
        options.SendQueue.MaxBytes = 1000;
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await server.StopAsync();
        await states.NextAsync(LifelineClientState.Reconnecting);

        await client.SendAsync(new byte[900]).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        using var cancelled = new CancellationTokenSource();
        var waiting = client.SendAsync(new byte[500], cancellationToken: cancelled.Token).AsTask();
        Assert.False(waiting.IsCompleted);
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(15)));

        await client.SendAsync(new byte[10]).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(2, client.Statistics.QueuedMessages);

        await server.RestartAsync();
        await Wait.UntilAsync(() => server.ReceivedLengths.Count >= 2, TimeSpan.FromSeconds(30), "both messages at the server");
        Assert.Equal([900, 10], server.ReceivedLengths.ToArray());
    }

    [Fact]
    public async Task AwaitedSendsBehindQueuedOnes_EachReturnsOnceWritten_SoTheQueueEmptiesAgain()
    {
        // Sends with a token that can be cancelled go through the queue and return once queued. An awaited send without
        // a token that finds them ahead of it must return only once it was written, as a direct write does: returning
        // once queued, a sender that awaits each send would keep the queue's writer busy for good, and every later send
        // would be copied into the queue instead of written directly.
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/silent")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        using var never = new CancellationTokenSource();
        var payload = new byte[1024];
        const int Queued = 300;

        for (var i = 0; i < Queued; i++)
        {
            await client.SendAsync(payload, WebSocketMessageType.Binary, never.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        }

        for (var i = 1; i <= 20; i++)
        {
            await client.SendAsync(payload).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            var statistics = client.Statistics;
            Assert.Equal((Queued + i, 0), (statistics.MessagesSent, statistics.QueuedMessages));
        }
    }

    [Fact]
    public async Task SendsWhileDown_ArriveAfterReconnect_InOrder()
    {
        var (server, client, states) = await ConnectedThenServerDownAsync();
        await using var _ = server;
        await using var __ = client;

        for (var i = 1; i <= 5; i++)
        {
            await client.SendTextAsync($"m{i}");
        }

        Assert.Equal(5, client.Statistics.QueuedMessages);
        await server.RestartAsync();
        await states.NextAsync(LifelineClientState.Connected);

        await Wait.UntilAsync(() => server.Received.Count >= 5, what: "five queued messages at the server");
        Assert.Equal(["m1", "m2", "m3", "m4", "m5"], server.Received.ToArray());
        Assert.Equal(5, client.Statistics.MessagesQueuedWhileDisconnected);
    }

    [Fact]
    public async Task ReconnectedHook_SendsBeforeTheQueueIsFlushed()
    {
        var (server, client, states) = await ConnectedThenServerDownAsync(options =>
            options.OnReconnected = (context, ct) => context.SendTextAsync("subscribe", ct));
        await using var _ = server;
        await using var __ = client;

        await client.SendTextAsync("queued-1");
        await client.SendTextAsync("queued-2");
        await server.RestartAsync();
        await states.NextAsync(LifelineClientState.Connected);

        await Wait.UntilAsync(() => server.Received.Count >= 3, what: "three messages at the server");
        Assert.Equal(["subscribe", "queued-1", "queued-2"], server.Received.ToArray());
    }

    [Fact]
    public async Task QueueBoundExceeded_DropOldest_KeepsTheNewestAndCounts()
    {
        var (server, client, states) = await ConnectedThenServerDownAsync(options =>
        {
            options.SendQueue.MaxMessages = 3;
            options.SendQueue.FullMode = SendQueueFullMode.DropOldest;
        });
        await using var _ = server;
        await using var __ = client;

        for (var i = 1; i <= 5; i++)
        {
            await client.SendTextAsync($"m{i}");
        }

        Assert.Equal(2, client.Statistics.MessagesDroppedQueueFull);
        await server.RestartAsync();
        await states.NextAsync(LifelineClientState.Connected);
        await Wait.UntilAsync(() => server.Received.Count >= 3, what: "three messages at the server");
        Assert.Equal(["m3", "m4", "m5"], server.Received.ToArray());
    }

    [Fact]
    public async Task QueueBoundExceeded_Fail_ThrowsAndKeepsWhatWasQueued()
    {
        var (server, client, _) = await ConnectedThenServerDownAsync(options =>
        {
            options.SendQueue.MaxMessages = 2;
            options.SendQueue.FullMode = SendQueueFullMode.Fail;
        });
        await using var _s = server;
        await using var _c = client;

        await client.SendTextAsync("a");
        await client.SendTextAsync("b");
        await Assert.ThrowsAsync<SendQueueFullException>(() => client.SendTextAsync("c").AsTask());
        Assert.Equal(2, client.Statistics.QueuedMessages);
    }

    [Fact]
    public async Task QueueBoundExceeded_Wait_BlocksUntilCancelled()
    {
        var (server, client, _) = await ConnectedThenServerDownAsync(options => options.SendQueue.MaxMessages = 1);
        await using var _s = server;
        await using var _c = client;

        await client.SendTextAsync("a");
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.SendTextAsync("b", cts.Token).AsTask());
    }

    [Fact]
    public async Task StaleMessages_AreDroppedAndCounted_NotSentLate()
    {
        var (server, client, states) = await ConnectedThenServerDownAsync(options => options.SendQueue.MaxAge = TimeSpan.FromMilliseconds(200));
        await using var _ = server;
        await using var __ = client;

        await client.SendTextAsync("stale");
        await Task.Delay(400); // let it age past MaxAge while the server is down
        await server.RestartAsync();
        await states.NextAsync(LifelineClientState.Connected);
        await client.SendTextAsync("fresh");

        await Wait.UntilAsync(() => server.Received.Contains("fresh"), what: "the fresh message");
        Assert.Equal(["fresh"], server.Received.ToArray());
        Assert.Equal(1, client.Statistics.MessagesDroppedStale);
    }

    [Fact]
    public async Task QueueingOff_SendWhileDown_ThrowsClearly()
    {
        var (server, client, _) = await ConnectedThenServerDownAsync(options => options.SendQueue.Enabled = false);
        await using var _s = server;
        await using var _c = client;

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => client.SendTextAsync("x").AsTask());
        Assert.Contains("queueing is off", error.Message, StringComparison.Ordinal);
    }
}
