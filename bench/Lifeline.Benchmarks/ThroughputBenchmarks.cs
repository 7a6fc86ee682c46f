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
/// raw <see cref="ClientWebSocket"/> (the baseline), Lifeline in plain and in session mode (FramedServer answers the
/// Hello and pre-frames session Data frames), and Websocket.Client 5.5.1.
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
    private LifelineClient _sessionSender = null!;
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
        _lifelineSender = new LifelineClient(Options(_server.SinkUri, session: false));
        await _lifelineSender.StartAsync();
        _sessionSender = new LifelineClient(Options(_server.SinkUri, session: true));
        await _sessionSender.StartAsync();
        _websocketClientSender = new WebsocketClient(_server.SinkUri) { IsReconnectionEnabled = false };
        await _websocketClientSender.Start();
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _rawSender.Abort();
        _rawSender.Dispose();
        await _lifelineSender.DisposeAsync();
        await _sessionSender.DisposeAsync();
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
    public Task Receive_LifelinePlain() => ReceiveAsync(session: false);

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("receive")]
    public Task Receive_LifelineSession() => ReceiveAsync(session: true);

    /// <summary>The allocation-free path: <see cref="LifelineClient.ReceiveAsync"/> into the caller's buffer.</summary>
    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("receive")]
    public async Task Receive_LifelineReceiveAsync()
    {
        await using var client = new LifelineClient(new LifelineClientOptions { Uri = _server.BlastUri, ReconnectPolicy = Reconnect.NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromMilliseconds(100) });
        await client.StartAsync();
        for (var received = 0; received < Messages; received++)
        {
            Suite.ThroughputScenario.ExpectMessage(await client.ReceiveAsync(_receiveBuffer));
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
    public Task Send_LifelinePlain() => SendAsync(_lifelineSender);

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("send")]
    public Task Send_LifelineSession() => SendAsync(_sessionSender);

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("send")]
    public async Task Send_WebsocketClient()
    {
        for (var i = 0; i < Messages; i++)
        {
            await _websocketClientSender.SendInstant(_payload);
        }
    }

    private LifelineClientOptions Options(Uri uri, bool session)
    {
        var options = new LifelineClientOptions { Uri = uri, ReconnectPolicy = Reconnect.NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromMilliseconds(100) };
        options.SendQueue.MaxMessages = Messages;
        options.SendQueue.MaxBytes = (long)Messages * (Size + 32);
        if (session)
        {
            options.Session = new SessionOptions();
        }

        return options;
    }

    private async Task ReceiveAsync(bool session)
    {
        await using var client = new LifelineClient(Options(_server.BlastUri, session));
        await client.StartAsync();
        for (var received = 0; received < Messages; received++)
        {
            _ = await client.Messages.ReadAsync();
        }
    }

    private async Task SendAsync(LifelineClient sender)
    {
        // A send may complete when queued; the figure that matters is when the server has counted everything.
        var target = _server.SinkMessages + Messages;
        for (var i = 0; i < Messages; i++)
        {
            await sender.SendAsync(_payload);
        }

        while (_server.SinkMessages < target)
        {
            await Task.Yield();
        }
    }
}
