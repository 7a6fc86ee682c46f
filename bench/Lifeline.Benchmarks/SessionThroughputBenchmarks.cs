using System.Net.WebSockets;
using BenchmarkDotNet.Attributes;
using Lifeline.Client;
using Lifeline.Reconnect;

namespace Lifeline.Benchmarks;

/// <summary>
/// What session mode (<c>lifeline.v1</c>: numbering, acknowledgements, replay buffer) costs over plain mode and a raw
/// <see cref="ClientWebSocket"/>, in the same run against the same real Kestrel server (<c>MapLifelineSession</c>, which
/// serves plain clients on the same endpoints). Receive: the server sends <see cref="Messages"/> messages of
/// <see cref="Size"/> bytes on a fresh connection per operation. Send: the client sends them to a server that reads and
/// discards (one connection per client kind, kept across operations); a session send counts when written, and the
/// replay buffer's bound (1 MiB) makes it wait for the server's acknowledgements as it would in use. Figures are per message.
/// </summary>
[MemoryDiagnoser]
public class SessionThroughputBenchmarks
{
    private const int Messages = 10_000;
    private SessionServer _server = null!;
    private string _drainFile = null!;
    private byte[] _payload = null!;
    private byte[] _receiveBuffer = null!;
    private ClientWebSocket _rawSender = null!;
    private LifelineClient _plainSender = null!;
    private LifelineClient _sessionSender = null!;

    [Params(32, 4096)]
    public int Size { get; set; }

    private Uri BlastUri => _server.Uri($"/blast?n={Messages}&size={Size}");

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _drainFile = Path.Combine(Path.GetTempPath(), $"lifeline-bench-{Guid.NewGuid():N}.bin");
        _server = await SessionServer.StartAsync(_drainFile);
        _payload = new byte[Size];
        _receiveBuffer = new byte[64 * 1024];
        _rawSender = new ClientWebSocket();
        await _rawSender.ConnectAsync(_server.Uri("/sink"), CancellationToken.None);
        _plainSender = new LifelineClient(Options(_server.Uri("/sink"), session: false));
        await _plainSender.StartAsync();
        _sessionSender = new LifelineClient(Options(_server.Uri("/sink"), session: true));
        await _sessionSender.StartAsync();
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _rawSender.Abort();
        _rawSender.Dispose();
        await _plainSender.DisposeAsync();
        await _sessionSender.DisposeAsync();
        await _server.DisposeAsync();
        File.Delete(_drainFile);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Messages)]
    [BenchmarkCategory("receive")]
    public async Task Receive_RawClientWebSocket()
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(BlastUri, CancellationToken.None);
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
    public Task Send_LifelinePlain() => SendAsync(_plainSender);

    [Benchmark(OperationsPerInvoke = Messages)]
    [BenchmarkCategory("send")]
    public Task Send_LifelineSession() => SendAsync(_sessionSender);

    private static LifelineClientOptions Options(Uri uri, bool session)
    {
        var options = new LifelineClientOptions { Uri = uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromMilliseconds(100) };
        options.SendQueue.MaxMessages = Messages;
        options.SendQueue.MaxBytes = (long)Messages * 4096;
        if (session)
        {
            options.Session = new SessionOptions();
        }

        return options;
    }

    private async Task ReceiveAsync(bool session)
    {
        await using var client = new LifelineClient(Options(BlastUri, session));
        await client.StartAsync();
        for (var received = 0; received < Messages; received++)
        {
            Suite.ThroughputScenario.ExpectMessage(await client.ReceiveAsync(_receiveBuffer));
        }
    }

    private async Task SendAsync(LifelineClient sender)
    {
        var target = sender.Statistics.MessagesSent + Messages;
        for (var i = 0; i < Messages; i++)
        {
            await sender.SendAsync(_payload);
        }

        // A send completes when queued; the figure that matters is when everything was written.
        while (sender.Statistics.MessagesSent < target)
        {
            await Task.Yield();
        }
    }
}
