using System.Net.Sockets;
using System.Net.WebSockets;
using System.Threading.Channels;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

[Collection(SerialCollection.Name)]
public sealed class SlowConsumerTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int MessageSize = 32 * 1024;
    private const int Broadcasts = 400;

    [Fact]
    public async Task HandlerReturnsWithABacklogLongerToWriteThanFiveSeconds_ClientReadsItAllThen1000_NotAborted()
    {
        // A client behind a slow link, but reading (no write takes SendTimeout): the handler queues 32 MiB and returns,
        // and the client reads nothing for 8 s of the server's fake clock. Its Close frame (1000) waits behind the
        // backlog. Before, the close's wait was cut after 5 s and the link reset: 1006 and the backlog's tail lost, and
        // a Lifeline client reconnected instead of stopping.
        const int messages = 32;
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var queued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(
            o =>
            {
                o.SendBufferBytes = 64L << 20;
                o.SendTimeout = TimeSpan.FromSeconds(15);
                o.KeepAliveInterval = TimeSpan.Zero;
            },
            async (connection, ct) =>
            {
                var payload = new byte[1 << 20];
                for (var i = 0; i < messages; i++)
                {
                    await connection.SendAsync(payload, WebSocketMessageType.Binary, ct);
                }

                queued.TrySetResult();
            },
            services: s => Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton<TimeProvider>(s, time));
        using var slow = new ClientWebSocket();
        slow.Options.KeepAliveInterval = TimeSpan.Zero;
        await slow.ConnectAsync(host.Uri(), CancellationToken.None);
        await queued.Task.WaitAsync(TimeSpan.FromSeconds(30));
        for (var second = 0; second < 8; second++)
        {
            await Task.Delay(50);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        var buffer = new byte[64 * 1024];
        var received = 0;
        WebSocketReceiveResult result;
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while ((result = await slow.ReceiveAsync(buffer, bound.Token)).MessageType != WebSocketMessageType.Close)
        {
            received += result.EndOfMessage ? 1 : 0;
        }

        Assert.Equal(messages, received);
        Assert.Equal(1000, (int?)slow.CloseStatus);
        await slow.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    [Fact]
    public async Task SendToGroupAsync_OneClientStopsReading_OthersKeepReceiving_StalledOneIsClosed()
    {
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.SendBufferBytes = 256 * 1024;
            o.SendTimeout = TimeSpan.FromSeconds(2);
        }, handler: async (connection, ct) =>
        {
            connection.JoinGroup("all");
            await foreach (var message in connection.Messages.ReadAllAsync())
            {
                // Nothing to answer: this group only listens.
            }
        });
        using var stalled = await ConnectNeverReadingAsync(host.Uri("/ws?name=stalled"));
        using var healthy = new ClientWebSocket();
        await healthy.ConnectAsync(host.Uri(), CancellationToken.None);
        await Wait.UntilAsync(() => host.Registry.GroupMembers("all").Count == 2, what: "both clients in the group");
        var stalledConnection = host.Registry.Connections.Single(c => c.Query["name"] == "stalled");
        var received = Channel.CreateUnbounded<int>();
        _ = ReadMessagesAsync(healthy, received.Writer);

        // Bursts the healthy client keeps up with (4 x 32 KiB within its 256 KiB buffer); 12.8 MB in all, far more
        // than the stalled client's TCP buffers hold.
        var payload = new byte[MessageSize];
        for (var i = 0; i < Broadcasts; i += 4)
        {
            for (var j = i; j < i + 4; j++)
            {
                BitConverter.TryWriteBytes(payload, j);
                // A broadcast must never wait on the stalled member: each one returns promptly whatever it does.
                await host.Registry.SendToGroupAsync("all", payload, WebSocketMessageType.Binary).WaitAsync(TimeSpan.FromSeconds(10));
            }

            for (var j = i; j < i + 4; j++)
            {
                Assert.Equal(j, await Wait.ReadAsync(received.Reader, TimeSpan.FromSeconds(15)));
            }
        }

        // Event-driven, with a bound far above the library's own (a stuck write or an unanswered Close frame each end
        // the link within SendTimeout, 2 s here), so a loaded machine does not make it flaky.
        await stalledConnection.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"stalled connection ended with {stalledConnection.ClosedWith}");
        Assert.Equal(4008, stalledConnection.ClosedWith?.Value);
        Assert.Equal(1, host.Registry.Count);
    }

    [Fact]
    public async Task SlowConsumerClose_KernelTakesTheCloseFrame_ClientNeverAnswers_ConnectionStillEnds()
    {
        // The outbound buffer overflows while the kernel still has room (one slot, tiny messages), so the 4008 Close
        // frame goes out; the client never reads, so it never answers. Keep-alive is off: only the library's own bound
        // on the close reply can end the connection.
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.SendBufferMessages = 1;
            o.SendTimeout = TimeSpan.FromSeconds(2);
            o.KeepAliveInterval = TimeSpan.Zero;
        }, handler: async (connection, ct) =>
        {
            connection.JoinGroup("all");
            await foreach (var message in connection.Messages.ReadAllAsync())
            {
            }
        });
        using var stalled = new ClientWebSocket();
        stalled.Options.KeepAliveInterval = TimeSpan.Zero;
        await stalled.ConnectAsync(host.Uri(), CancellationToken.None);
        await Wait.UntilAsync(() => host.Registry.GroupMembers("all").Count == 1, what: "the client in the group");
        var connection = host.Registry.Connections.Single();

        var payload = new byte[16];
        for (var i = 0; i < 1000 && connection.ClosedWith is null; i++)
        {
            await host.Registry.SendToGroupAsync("all", payload, WebSocketMessageType.Binary);
        }

        Assert.Equal(4008, connection.ClosedWith?.Value);
        await connection.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(0, host.Registry.Count);
    }

    [Fact]
    public async Task OneWriteStuckLongerThanSendTimeout_ClientClosedAsSlowConsumer()
    {
        // One message far larger than what the transport and the client's tiny window take: its write stays pending, and
        // only the send timeout of that write (not a full buffer: the buffer holds just this one) can end the link.
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.SendTimeout = TimeSpan.FromSeconds(2);
            o.KeepAliveInterval = TimeSpan.Zero;
        }, handler: async (connection, ct) =>
        {
            await connection.SendAsync(new byte[8 * 1024 * 1024], WebSocketMessageType.Binary, ct);
            await foreach (var message in connection.Messages.ReadAllAsync())
            {
            }
        });
        using var stalled = await ConnectNeverReadingAsync(host.Uri());
        await Wait.UntilAsync(() => host.Registry.Count == 1, what: "the connection registered");
        var connection = host.Registry.Connections.Single();

        await connection.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(4008, connection.ClosedWith?.Value);
    }

    /// <summary>A client with a tiny TCP receive window that never calls ReceiveAsync: the server's writes stall.</summary>
    internal static async Task<ClientWebSocket> ConnectNeverReadingAsync(Uri uri)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var tcp = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096, NoDelay = true };
                await tcp.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(tcp, ownsSocket: true);
            },
        };
        using var invoker = new HttpMessageInvoker(handler, disposeHandler: false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await socket.ConnectAsync(uri, invoker, timeout.Token);
        return socket;
    }

    /// <summary>Reads whole messages and reports the number each one starts with, until the connection ends.</summary>
    internal static async Task ReadMessagesAsync(WebSocket socket, ChannelWriter<int> numbers)
    {
        var buffer = new byte[MessageSize];
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    length += result.Count;
                }
                while (!result.EndOfMessage);

                numbers.TryWrite(BitConverter.ToInt32(buffer, 0));
            }
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The test ended.
        }
        finally
        {
            numbers.TryComplete();
        }
    }
}
