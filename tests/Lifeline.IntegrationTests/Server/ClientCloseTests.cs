using System.Net.WebSockets;
using System.Text;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

/// <summary>A client that sends and closes at once still gets the answers to what it sent before its Close.</summary>
public sealed class ClientCloseTests
{
    [Fact]
    public async Task ClientSendsThenClosesAtOnce_EchoesArriveBeforeTheServersClose()
    {
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, ct) =>
        {
            await foreach (var message in connection.Messages.ReadAllAsync())
            {
                await Task.Delay(50); // a handler that takes a moment per message
                await connection.SendAsync(message.Data, message.Type, ct);
            }
        });
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(host.Uri(), CancellationToken.None);

        foreach (var text in new[] { "one", "two", "three" })
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        }

        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);

        var received = new List<string>();
        var buffer = new byte[1024];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, bound.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                break;
            }

            received.Add(Encoding.UTF8.GetString(buffer, 0, result.Count));
        }

        Assert.Equal(["one", "two", "three"], received);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task ClientVanishes_AHandlerPushingWithoutItsToken_GetsAThrowingSend_AndBroadcastsSkipIt()
    {
        var sendFailed = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pushing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, _) =>
        {
            // Pushes until a send fails; ignores its token (bounded: 3,000 sends of 10 ms).
            for (var i = 0; i < 3_000; i++)
            {
                try
                {
                    await connection.SendTextAsync($"push {i}");
                }
                catch (Exception e)
                {
                    sendFailed.TrySetResult(e);
                    return;
                }

                pushing.TrySetResult();
                await Task.Delay(10, CancellationToken.None);
            }
        });
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(host.Uri(), CancellationToken.None);
        await pushing.Task.WaitAsync(TimeSpan.FromSeconds(15));

        socket.Abort(); // the link ends without a Close frame

        // Before, every send after the link died still completed (the writer dropped them): the handler never ended, and
        // a broadcast counted the dead connection as reached.
        var failure = await sendFailed.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.IsType<InvalidOperationException>(failure);
        await Wait.UntilAsync(() => host.Registry.Count == 0, TimeSpan.FromSeconds(20), "the connection to leave the registry");
        Assert.Equal(0, await host.Registry.SendToAllAsync("anyone?"));
    }

    [Fact]
    public async Task ClientCloses_HandlerThatRunsUntilClosing_IsAnsweredAfterTheGrace()
    {
        await using var host = await LifelineTestHost.StartAsync(o => o.CloseReplyGrace = TimeSpan.FromMilliseconds(200), handler: async (connection, ct) =>
        {
            // Ignores Messages: streams until the connection is closing.
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(20, CancellationToken.None);
            }
        });
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(host.Uri(), CancellationToken.None);

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);

        Assert.Equal(WebSocketState.Closed, socket.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }
}
