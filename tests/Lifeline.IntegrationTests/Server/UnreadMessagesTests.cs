using System.Net.WebSockets;
using Lifeline.AspNetCore;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

/// <summary>A handler that never reads Messages fills the receive buffer; the close handshake must still happen.</summary>
public sealed class UnreadMessagesTests
{
    private static async Task NeverReadsAsync(LifelineConnection connection, CancellationToken closing) =>
        await Task.Delay(Timeout.Infinite, closing).ContinueWith(_ => { }, TaskScheduler.Default);

    [Fact]
    public async Task ClientClose_HandlerNotReadingAndBufferFull_IsAnsweredAtOnce()
    {
        await using var host = await LifelineTestHost.StartAsync(o => o.ReceiveCapacity = 2, NeverReadsAsync);
        await using var client = await PlainClient.ConnectAsync(host.Uri());
        // Two fill the buffer, the third waits for room in the receive loop; the Close frame comes right after it.
        for (var i = 0; i < 3; i++)
        {
            await client.SendTextAsync($"m{i}");
        }

        await client.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);

        Assert.Equal(1000, (await client.Closed.WaitAsync(TimeSpan.FromSeconds(15))).Code);
        await Wait.UntilAsync(() => host.Registry.Count == 0, what: "the connection to end");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ClientVanishes_HandlerNotReadingAndBufferFull_EndsTheConnection(bool reset)
    {
        await using var host = await LifelineTestHost.StartAsync(o => o.ReceiveCapacity = 2, NeverReadsAsync);
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);
        await Wait.UntilAsync(() => host.Registry.Count == 1);
        var connection = Assert.Single(host.Registry.Connections);

        // Two fill the buffer, the third waits for room, and the fourth is already there behind it: the receive loop then
        // waits for room alone (nothing more can be read before the handler makes some).
        for (var i = 0; i < 4; i++)
        {
            await client.SendFrameAsync(2, [(byte)i]);
        }

        await Wait.UntilAsync(() => connection.WaitsBehindPeekedData, what: "the receive loop to wait for room, the fourth frame peeked");
        if (reset)
        {
            client.Reset();
        }
        else
        {
            client.Dispose();
        }

        // The link is gone: the connection ends (its handler sees Closing) although its messages are never read. Before,
        // the receive loop went round without end once the request was aborted, on a thread of its own, and the
        // connection stayed registered for good.
        await Wait.UntilAsync(() => host.Registry.Count == 0, TimeSpan.FromSeconds(20), what: "the connection to end");
        Assert.Equal(1006, connection.ClosedWith?.Value);
    }

    [Fact]
    public async Task LargeMessages_HandlerReadingLate_ReceiveBufferIsBoundedInBytesAndNothingIsLost()
    {
        // The receive buffer was bounded in messages only: 1,000 messages of up to 1 MiB, so a client sending large ones
        // to a handler that read slowly held up to 1 GiB of the server's memory. Now it holds ReceiveCapacityBytes (4 MiB
        // by default) and the socket is not read meanwhile (TCP slows the client down).
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new List<int>();
        var readAll = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int Count = 16;
        await using var host = await LifelineTestHost.StartAsync(_ => { }, async (connection, closing) =>
        {
            await gate.Task.WaitAsync(closing);
            await foreach (var message in connection.Messages.ReadAllAsync(closing))
            {
                received.Add(message.Data.Span[0]);
                if (received.Count == Count)
                {
                    readAll.TrySetResult();
                }
            }
        });
        using var client = new ClientWebSocket();
        await client.ConnectAsync(host.Uri(), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(15));
        await Wait.UntilAsync(() => host.Registry.Count == 1);
        var connection = Assert.Single(host.Registry.Connections);

        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                var payload = new byte[1_000_000];
                payload[0] = (byte)i;
                await client.SendAsync(payload, WebSocketMessageType.Binary, true, CancellationToken.None);
            }
        });
        await Wait.UntilAsync(() => connection.WaitsBehindPeekedData, TimeSpan.FromSeconds(60), what: "the receive loop to stop reading at the byte bound");
        Assert.Equal(4, connection.Messages.Count); // 4 MB held; the fifth waits for room, the sixth is peeked

        gate.SetResult();
        await readAll.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await sending.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, Count), received);
    }

    [Fact]
    public async Task Drain_HandlerNotReadingAndBufferFull_CompletesWithTheClientsAnswer()
    {
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.ReceiveCapacity = 2;
            o.DrainTimeout = TimeSpan.FromSeconds(25);
        }, NeverReadsAsync);
        // A raw client that answers the Close frame but keeps its TCP connection open, as a browser may.
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);
        await Wait.UntilAsync(() => host.Registry.Count == 1);
        var connection = Assert.Single(host.Registry.Connections);
        for (var i = 0; i < 10; i++)
        {
            await client.SendFrameAsync(1, "message"u8.ToArray());
        }

        var drain = host.Server.DrainAsync();
        Assert.Equal(1012, await client.ReadCloseCodeAsync(TimeSpan.FromSeconds(15)));
        await client.SendFrameAsync(8, [0x03, 0xF4]); // 1012 back

        // Well inside the 25 s drain timeout: the client's answer is read although nobody reads the messages.
        await drain.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(1012, connection.ClosedWith?.Value);
    }
}
