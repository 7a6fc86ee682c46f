using System.Net.WebSockets;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using Lifeline.Client;

namespace Lifeline.Benchmarks;

/// <summary>
/// The per-message cost of the send queue: Lifeline copies each message into a pooled buffer, returned after the
/// send. The baseline is the obvious alternative: copy with ToArray into a channel of byte arrays.
/// </summary>
[MemoryDiagnoser]
public class SendQueueBenchmarks
{
    private readonly byte[] _payload = new byte[256];
    private SendQueue _queue = null!;
    private Channel<byte[]> _baseline = null!;

    [GlobalSetup]
    public void Setup()
    {
        _queue = new SendQueue(new SendQueueOptions { MaxMessages = 10_000, MaxBytes = 64 * 1024 * 1024 }, new NoWriter(), new Lock());
        _baseline = Channel.CreateBounded<byte[]>(10_000);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = 100)]
    public async Task ToArrayIntoChannel()
    {
        for (var i = 0; i < 100; i++)
        {
            await _baseline.Writer.WriteAsync(_payload.AsSpan().ToArray());
            _ = await _baseline.Reader.ReadAsync();
        }
    }

    [Benchmark(OperationsPerInvoke = 100)]
    public async Task LifelinePooledQueue()
    {
        for (var i = 0; i < 100; i++)
        {
            await _queue.EnqueueAsync(new OutgoingMessage(_payload, WebSocketMessageType.Binary, 0), default);
            _ = _queue.TakeNext(out var message);
            message!.Release();
        }
    }

    private sealed class NoWriter : ISendQueueOwner
    {
        public void OnDropped(DropReason reason)
        {
        }

        public void StartWriter()
        {
        }
    }
}
