using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Lifeline.Redis;
using Lifeline.Session;
using Lifeline.Session.Store;

namespace Lifeline.Benchmarks;

/// <summary>
/// Throughput of the Redis session log: 100 outbound messages of 256 bytes appended one call each (one round trip
/// per message) or as one batch (one round trip), each followed by the acknowledgement that trims the log. Starts its
/// own redis-server on a free port of 127.0.0.1 without persistence (from .ci/install-deps).
/// dotnet run -c Release --project bench/Lifeline.Benchmarks -- --filter '*RedisStore*' --job short
/// </summary>
[MemoryDiagnoser]
public class RedisStoreBenchmarks
{
    private const int Messages = 100;
    private readonly byte[] _payload = new byte[256];
    private RedisProcess _server = null!;
    private LifelineRedisConnection _connection = null!;
    private RedisSessionStore _store = null!;
    private RedisSessionLease _lease = null!;
    private long _next = 1;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _server = await RedisProcess.StartAsync();
        _connection = new LifelineRedisConnection(new LifelineRedisOptions { Configuration = _server.Configuration, ConnectTimeout = TimeSpan.FromSeconds(10) });
        _store = new RedisSessionStore(_connection);
        var ready = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                _lease = await _store.TryAcquireAsync(ResumeToken.Create().DeriveSessionId());
                break;
            }
            catch (SessionStoreUnavailableException) when (ready.Elapsed < TimeSpan.FromSeconds(15))
            {
                await Task.Delay(100);
            }
        }
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _connection.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Messages)]
    public async Task AppendOneByOne()
    {
        for (var i = 0; i < Messages; i++)
        {
            await _store.AppendAsync(_lease, [new SessionMessage(_next, false, _payload)]);
            _next++;
        }

        await _store.AcknowledgeAsync(_lease, _next - 1);
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public async Task AppendBatched()
    {
        var batch = new SessionMessage[Messages];
        for (var i = 0; i < Messages; i++)
        {
            batch[i] = new SessionMessage(_next + i, false, _payload);
        }

        _next += Messages;
        await _store.AppendAsync(_lease, batch);
        await _store.AcknowledgeAsync(_lease, _next - 1);
    }
}
