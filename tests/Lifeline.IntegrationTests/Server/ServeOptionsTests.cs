using System.Net.WebSockets;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

public sealed class ServeOptionsTests
{
    [Fact]
    public async Task Serve_MaxMessageSizeRaised_EchoesAMessageOverTheDefaultLimit()
    {
        var (serve, port) = await ServeProcess.StartAsync("--max-message-size", "16777216");
        await using var serveScope = serve;
        using var client = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await client.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws"), timeout.Token);
        var message = new byte[4 * 1024 * 1024]; // four times the default 1 MiB limit
        Random.Shared.NextBytes(message);

        await client.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);

        var echo = new byte[message.Length];
        var total = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await client.ReceiveAsync(echo.AsMemory(total), timeout.Token);
            Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
            total += result.Count;
        }
        while (!result.EndOfMessage);

        Assert.Equal(message, echo);
    }
}
