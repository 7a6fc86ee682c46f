using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Client;

/// <summary>Stopping and disposing: one clean close, bounded whatever the hooks do, and sends refused with one exception.</summary>
public sealed class LifelineClientStopTests
{
    // Far above CloseTimeout (1 s) and far below HookTimeout's default (10 s): a stop that waited for a hung hook fails.
    private static readonly TimeSpan StopBound = TimeSpan.FromSeconds(6);

    [Fact]
    public async Task StopAsyncAndDisposeAsync_CalledTogether_CloseOnceWith1000AndACloseFrame()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var stop = client.StopAsync();
        var dispose = client.DisposeAsync().AsTask();
        var stopAgain = client.StopAsync();
        await Task.WhenAll(stop, dispose, stopAgain).WaitAsync(TimeSpan.FromSeconds(15));

        await Wait.UntilAsync(() => !server.ClosesReceived.IsEmpty, what: "the client's Close frame at the server");
        Assert.Equal([WebSocketCloseStatus.NormalClosure], server.ClosesReceived.Select(c => c.Status).ToArray());
        Assert.Equal(0, server.EndedWithoutClose);
        Assert.Equal(CloseCode.NormalClosure, client.LastClose!.Code);
        Assert.Equal(CloseInitiator.Client, client.LastClose.Initiator);
        Assert.True(client.LastClose.CloseFrameReceived);
    }

    [Fact]
    public async Task DisposeAsync_ReceiveBufferFullAndUnread_TheServersCloseReplyIsStillRead()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.ReceiveCapacity = 2;
        options.CloseTimeout = TimeSpan.FromSeconds(10);
        var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // Five echoes come back; the application reads none, so two fill the buffer and three wait on the socket.
        for (var i = 1; i <= 5; i++)
        {
            await client.SendTextAsync($"m{i}");
        }

        await Wait.UntilAsync(() => server.Received.Count == 5 && client.Statistics.MessagesReceived >= 2, TimeSpan.FromSeconds(15), "the buffer to fill");

        // Before, the receive loop stayed parked on the full buffer: the server's answer to the Close frame was never
        // read, and the stop ended after CloseTimeout as 1006 "the server did not answer the Close frame".
        await client.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(CloseCode.NormalClosure, client.LastClose!.Code);
        Assert.True(client.LastClose.CloseFrameReceived);
        Assert.Equal(0, server.EndedWithoutClose);
    }

    [Fact]
    public async Task DisposeAsync_Twice_BothCompleteAfterOneClose()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await Task.WhenAll(client.DisposeAsync().AsTask(), client.DisposeAsync().AsTask()).WaitAsync(TimeSpan.FromSeconds(15));

        await Wait.UntilAsync(() => !server.ClosesReceived.IsEmpty, what: "the client's Close frame at the server");
        Assert.Single(server.ClosesReceived);
        Assert.Equal(0, server.EndedWithoutClose);
        Assert.Equal(LifelineClientState.Closed, client.State);
    }

    [Fact]
    public async Task StopAsync_WithQueuedMessages_WritesThemBeforeTheCloseFrame()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        for (var i = 1; i <= 200; i++)
        {
            await client.SendTextAsync($"m{i}");
        }

        await client.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await Wait.UntilAsync(() => !server.ClosesReceived.IsEmpty, what: "the Close frame");
        Assert.Equal(Enumerable.Range(1, 200).Select(i => $"m{i}"), server.Received.ToArray());
        Assert.Equal(WebSocketCloseStatus.NormalClosure, server.ClosesReceived.Single().Status);
    }

    [Fact]
    public async Task StopAsync_HungReconnectingHook_ReturnsWithinCloseTimeout()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.CloseTimeout = TimeSpan.FromSeconds(1);
        var hookEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        options.OnReconnecting = async (_, _) =>
        {
            hookEntered.TrySetResult();
            await Task.Delay(Timeout.Infinite, CancellationToken.None); // ignores its token on purpose
        };
        var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        server.AbortAll();
        await hookEntered.Task.WaitAsync(TimeSpan.FromSeconds(15));

        await client.StopAsync().WaitAsync(StopBound);
        await client.DisposeAsync().AsTask().WaitAsync(StopBound);

        Assert.Equal(LifelineClientState.Closed, client.State);
    }

    [Fact]
    public async Task StopAsync_HungBeforeConnectHook_ReturnsWithinCloseTimeout()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.CloseTimeout = TimeSpan.FromSeconds(1);
        options.ConnectTimeout = TimeSpan.FromSeconds(30);
        var hookEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        options.BeforeConnect = async (_, _) =>
        {
            hookEntered.TrySetResult();
            await Task.Delay(Timeout.Infinite, CancellationToken.None);
        };
        var client = new LifelineClient(options);
        _ = client.StartAsync();
        await hookEntered.Task.WaitAsync(TimeSpan.FromSeconds(15));

        await client.DisposeAsync().AsTask().WaitAsync(StopBound);

        Assert.Equal(LifelineClientState.Closed, client.State);
    }

    [Fact]
    public async Task StopAsync_HungReconnectedHook_StillClosesCleanly()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.CloseTimeout = TimeSpan.FromSeconds(1);
        var hookEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        options.OnReconnected = async (_, _) =>
        {
            hookEntered.TrySetResult();
            await Task.Delay(Timeout.Infinite, CancellationToken.None);
        };
        var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        server.AbortAll();
        await states.NextAsync(LifelineClientState.Reconnecting);
        await hookEntered.Task.WaitAsync(TimeSpan.FromSeconds(15));

        await client.DisposeAsync().AsTask().WaitAsync(StopBound);

        await Wait.UntilAsync(() => !server.ClosesReceived.IsEmpty, what: "the Close frame after the hung hook");
        Assert.Equal(WebSocketCloseStatus.NormalClosure, server.ClosesReceived.Single().Status);
    }

    [Fact]
    public async Task SendAsync_WaitingForRoomWhenTheClientStops_ThrowsClosedAndIsNotLeft()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.SendQueue.MaxMessages = 1;
        options.SendQueue.FullMode = SendQueueFullMode.Wait;
        var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await server.StopAsync();
        await states.NextAsync(LifelineClientState.Reconnecting);
        await client.SendTextAsync("queued");
        var waiting = client.SendTextAsync("waiting").AsTask();
        Assert.False(waiting.IsCompleted);

        await client.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));

        await Assert.ThrowsAsync<LifelineClosedException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, client.Statistics.MessagesDroppedClosed);
        Assert.Equal(0, client.Statistics.QueuedMessages);
    }

    [Fact]
    public async Task SendAsync_AfterStopOrDispose_ThrowsTheClosedException()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var stopping = client.StopAsync();
        await Assert.ThrowsAsync<LifelineClosedException>(() => client.SendTextAsync("during").AsTask());
        await stopping.WaitAsync(TimeSpan.FromSeconds(15));
        await Assert.ThrowsAsync<LifelineClosedException>(() => client.SendTextAsync("after stop").AsTask());
        await client.DisposeAsync();
        await Assert.ThrowsAsync<LifelineClosedException>(() => client.SendTextAsync("after dispose").AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task SendAsync_MessageOverTheQueueByteBoundButUnderMaxMessageSize_IsSent()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/count"));
        options.MaxMessageSize = 8 * 1024 * 1024;
        options.SendQueue.MaxBytes = 1024 * 1024;
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await client.SendAsync(new byte[4 * 1024 * 1024]);

        await Wait.UntilAsync(() => !server.ReceivedLengths.IsEmpty, what: "the 4 MiB message at the server");
        Assert.Equal(4 * 1024 * 1024, server.ReceivedLengths.Single());
    }
}
