using System.Net.WebSockets;
using BenchmarkDotNet.Attributes;
using Lifeline.Client;
using Websocket.Client;

namespace Lifeline.Benchmarks;

/// <summary>
/// Receive and send throughput on loopback with the client as the bottleneck: for receiving, a server that writes
/// pre-built frames as fast as TCP takes them (a fresh connection per operation); for sending, a server that only
/// discards (one connection per client kind, kept across operations). Each operation moves <see cref="Messages"/>
/// messages of <see cref="Size"/> bytes:
/// raw <see cref="ClientWebSocket"/> (the baseline), Lifeline in plain mode, and Websocket.Client 5.5.1.
/// Figures are per message; ratios are to the raw socket.
/// </summary>
[MemoryDiagnoser]
public class ThroughputBenchmarks
{
    private const int Messages = 20_000;
    private FramedServer _server = null!;
    private byte[] _payload = null!;
    private byte[] _receiveBuffer = null!;
    private ClientWebSocket _rawSender = null!;
    private LifelineClient _lifelineSender = null!;
    private WebsocketClient _websocketClientSender = null!;

    [Params(32, 4096)]
    public int Size { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _server = new FramedServer();
        _server.PrepareBlast(Messages, Size);
        _payload = new byte[Size];
        _receiveBuffer = new byte[64 * 1024];

        _rawSender = new ClientWebSocket();
        await _rawSender.ConnectAsync(_server.SinkUri, CancellationToken.None);
        var options = new LifelineClientOptions { Uri = _server.SinkUri, ReconnectPolicy = Reconnect.NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromMilliseconds(100) };
        options.SendQueue.MaxMessages = Messages;
        options.SendQueue.MaxBytes = (long)Messages * Size;
        _lifelineSender = new LifelineClient(options);
        await _lifelineSender.StartAsync();
        _websocketClientSender = new WebsocketClient(_server.SinkUri) { IsReconnectionEnabled = false };
        await _websocketClientSender.Start();
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _rawSender.Abort();
        _rawSender.Dispose();
        await _lifelineSender.DisposeAsync();
        _websocketClientSender.Dispose();
        _server.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Messages)]
    [BenchmarkCategory("receive")]
    public async Task Receive_RawClientWebSocket()
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(_server.BlastUri, CancellationToken.None);
        for (var received = 0; received < Messages;)
        {
            var result = await socket.ReceiveAsync(_receiveBuffer.AsMemory(), CancellationToken.None);
            if (result.EndOfMessage)
            {
                received++;
            }
        }

        socket.Abort();
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("receive")]
    public async Task Receive_LifelinePlain()
    {
        await using var client = new LifelineClient(new LifelineClientOptions { Uri = _server.BlastUri, ReconnectPolicy = Reconnect.NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromMilliseconds(100) });
        await client.StartAsync();
        for (var received = 0; received < Messages; received++)
        {
            _ = await client.Messages.ReadAsync();
        }
    }

    /// <summary>The allocation-free path: <see cref="LifelineClient.ReceiveAsync"/> into the caller's buffer.</summary>
    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("receive")]
    public async Task Receive_LifelineReceiveAsync()
    {
        await using var client = new LifelineClient(new LifelineClientOptions { Uri = _server.BlastUri, ReconnectPolicy = Reconnect.NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromMilliseconds(100) });
        await client.StartAsync();
        for (var received = 0; received < Messages; received++)
        {
            _ = await client.ReceiveAsync(_receiveBuffer);
        }
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("receive")]
    public async Task Receive_WebsocketClient()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = 0;
        using var client = new WebsocketClient(_server.BlastUri) { IsReconnectionEnabled = false };
        using var subscription = client.MessageReceived.Subscribe(_ =>
        {
            if (++received == Messages)
            {
                done.TrySetResult();
            }
        });
        await client.Start();
        await done.Task;
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("send")]
    public async Task Send_RawClientWebSocket()
    {
        for (var i = 0; i < Messages; i++)
        {
            await _rawSender.SendAsync(_payload, WebSocketMessageType.Binary, true, CancellationToken.None);
        }
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("send")]
    public async Task Send_LifelinePlain()
    {
        var target = _lifelineSender.Statistics.MessagesSent + Messages;
        for (var i = 0; i < Messages; i++)
        {
            await _lifelineSender.SendAsync(_payload);
        }

        // A send completes when written (direct) or queued; the figure that matters is when everything was written.
        while (_lifelineSender.Statistics.MessagesSent < target)
        {
            await Task.Yield();
        }
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("send")]
    public async Task Send_WebsocketClient()
    {
        for (var i = 0; i < Messages; i++)
        {
            await _websocketClientSender.SendInstant(_payload);
        }
    }
}
