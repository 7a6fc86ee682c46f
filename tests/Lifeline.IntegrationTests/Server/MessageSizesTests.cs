using System.Net.WebSockets;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

/// <summary>
/// The server waits for each message with a zero-byte read and rents its buffer only once data is there: every size
/// and framing must still arrive whole and in order (empty, tiny, larger than the rented chunk, split into frames).
/// The echoes also take every frame-length form through the observer of sent frames, which must still find the
/// code of the Close frame the runtime sends afterwards.
/// </summary>
public sealed class MessageSizesTests
{
    [Fact]
    public async Task EverySizeAndFraming_IsEchoedWholeAndInOrder()
    {
        var server = new TaskCompletionSource<Lifeline.AspNetCore.LifelineConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: (connection, ct) =>
        {
            server.TrySetResult(connection);
            return LifelineTestHost.EchoAsync(connection, ct);
        });
        using var client = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await client.ConnectAsync(host.Uri(), timeout.Token);
        byte[][] messages = [[], [7], Random(40 * 1024 + 3), Random(100), Random(16 * 1024), Random(16 * 1024 + 1), Random(70_000)];

        foreach (var message in messages)
        {
            await client.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
        }

        // One message in three frames, the middle one empty, after an idle pause that lets the server return its buffer.
        var split = Random(20 * 1024);
        await Task.Delay(200, timeout.Token);
        await client.SendAsync(split.AsMemory(0, 5000), WebSocketMessageType.Binary, endOfMessage: false, timeout.Token);
        await client.SendAsync(ReadOnlyMemory<byte>.Empty, WebSocketMessageType.Binary, endOfMessage: false, timeout.Token);
        await client.SendAsync(split.AsMemory(5000), WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
        await client.SendAsync("last"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);

        foreach (var expected in messages.Append(split))
        {
            var (type, echo) = await ReceiveWholeAsync(client, timeout.Token);
            Assert.Equal(WebSocketMessageType.Binary, type);
            Assert.Equal(expected, echo);
        }

        var (lastType, last) = await ReceiveWholeAsync(client, timeout.Token);
        Assert.Equal(WebSocketMessageType.Text, lastType);
        Assert.Equal("last"u8.ToArray(), last);

        // Invalid UTF-8: the runtime fails the connection with 1007 and the server records the code it sent.
        await client.SendAsync(new byte[] { 0xC3, 0x28 }, WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        var connection = await server.Task.WaitAsync(timeout.Token);
        await connection.Completion.WaitAsync(timeout.Token);
        Assert.Equal(1007, connection.ClosedWith?.Value);
    }

    private static byte[] Random(int length)
    {
        var bytes = new byte[length];
        System.Random.Shared.NextBytes(bytes);
        return bytes;
    }

    private static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveWholeAsync(ClientWebSocket client, CancellationToken cancellationToken)
    {
        var buffer = new byte[128 * 1024];
        var total = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await client.ReceiveAsync(buffer.AsMemory(total), cancellationToken);
            total += result.Count;
        }
        while (!result.EndOfMessage);

        return (result.MessageType, buffer[..total]);
    }
}
