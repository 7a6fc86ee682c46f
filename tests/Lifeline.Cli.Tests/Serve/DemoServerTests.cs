using System.Net.WebSockets;
using System.Text;
using Lifeline.Cli.Serve;

namespace Lifeline.Cli.Tests.Serve;

/// <summary><c>lifeline serve</c>'s endpoints, on 127.0.0.1 with a plain ClientWebSocket.</summary>
public sealed class DemoServerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>Connects to <c>/stream</c> with a query and reads until the server closes: the messages and the close code.</summary>
    private static async Task<(List<string> Messages, WebSocketCloseStatus? Close)> ReadStreamAsync(string query)
    {
        await using var app = DemoServer.Build("http://127.0.0.1:0");
        await app.StartAsync();
        try
        {
            using var socket = new ClientWebSocket();
            using var cts = new CancellationTokenSource(Bound);
            await socket.ConnectAsync(new Uri("ws" + app.Urls.First()[4..] + DemoServer.StreamPath + query), cts.Token);
            var messages = new List<string>();
            var buffer = new byte[1024];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, cts.Token);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    return (messages, received.CloseStatus);
                }

                messages.Add(Encoding.UTF8.GetString(buffer, 0, received.Count));
            }
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task Stream_CountZero_SendsNothingAndClosesNormally()
    {
        // Before, a count below 1 was ignored and the stream never ended.
        var (messages, close) = await ReadStreamAsync("?count=0&interval=10");

        Assert.Empty(messages);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, close);
    }

    [Fact]
    public async Task Stream_IntervalBelowTheMinimum_IsRaisedToIt()
    {
        // 20 messages at the 10 ms minimum take 0.2 s; before, interval=5 fell back to 1000 ms (20 s) and this ran out
        // of its 10 s.
        var (messages, close) = await ReadStreamAsync("?count=20&interval=5");

        Assert.Equal(Enumerable.Range(1, 20).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), messages);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, close);
    }
}
