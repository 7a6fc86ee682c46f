using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Lifeline.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lifeline.Benchmarks;

/// <summary>
/// Issue 14's per-node figure: one Kestrel node with a <c>MapLifelineSession</c> echo endpoint, its sessions in the
/// in-memory store or in Redis (a redis-server of its own), and session clients that each send numbered 32-byte
/// messages and read the echoes. Per store: echoes per second (each echo is two session messages, one each way) and,
/// for Redis, the requests per session message (script calls, from INFO commandstats; each is at
/// most one round trip, fewer when StackExchange.Redis pipelines several sessions' requests together) and the commands
/// Redis ran for them (INFO total_commands_processed, script-internal ones included). The stores alternate, the median
/// of the repetitions is printed. Every client checks that it got its echoes exactly once and in order.
/// <code>dotnet run -c Release --project bench/Lifeline.Benchmarks -- redis-node [clients=20] [messages per client=2000] [repetitions=3]</code>
/// </summary>
public static class RedisNodeRunner
{
    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        var clients = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20;
        var messages = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2000;
        var repetitions = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
        await using var redis = await RedisProcess.StartAsync();
        output.WriteLine($"redis-node: {clients} session clients x {messages} echoes of 32 B per run, {repetitions} repetitions, redis-server on {redis.Configuration}");

        var memory = new List<Run>();
        var onRedis = new List<Run>();
        for (var i = 0; i < repetitions; i++)
        {
            memory.Add(await RunOnceAsync(null, clients, messages, output));
            onRedis.Add(await RunOnceAsync(redis, clients, messages, output));
            output.WriteLine($"  repetition {i + 1}: in-memory {memory[^1].EchoesPerSecond:N0}/s, Redis {onRedis[^1].EchoesPerSecond:N0}/s ({onRedis[^1].RequestsPerMessage:0.00} requests, {onRedis[^1].CommandsPerMessage:0.00} commands per session message)");
        }

        var memoryMedian = Median(memory);
        var redisMedian = Median(onRedis);
        output.WriteLine();
        output.WriteLine("| store | echoes/s (median) | session messages/s | ratio to in-memory | Redis requests per session message | commands run in Redis per session message |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|");
        output.WriteLine($"| in-memory (default) | {memoryMedian.EchoesPerSecond:N0} | {2 * memoryMedian.EchoesPerSecond:N0} | 1.00x | - | - |");
        output.WriteLine($"| Redis | {redisMedian.EchoesPerSecond:N0} | {2 * redisMedian.EchoesPerSecond:N0} | {redisMedian.EchoesPerSecond / memoryMedian.EchoesPerSecond:0.00}x | {redisMedian.RequestsPerMessage:0.00} | {redisMedian.CommandsPerMessage:0.00} |");
        var failed = memory.Concat(onRedis).Sum(r => r.Faults);
        output.WriteLine(failed == 0 ? "OK: every client got every echo exactly once and in order" : $"FAILED: {failed} echo(es) missing, repeated or out of order");
        return failed == 0 ? 0 : 1;
    }

    private readonly record struct Run(double EchoesPerSecond, double RequestsPerMessage, double CommandsPerMessage, long Faults);

    private static Run Median(List<Run> runs) => runs.OrderBy(r => r.EchoesPerSecond).ElementAt(runs.Count / 2);

    private static async Task<Run> RunOnceAsync(RedisProcess? redis, int clients, int messages, TextWriter output)
    {
        var node = await StartNodeAsync(redis);
        var uri = new Uri($"ws://127.0.0.1:{node.Urls.Select(u => new Uri(u).Port).First()}/echo");
        var connected = new List<LifelineClient>(clients);
        try
        {
            foreach (var _ in Enumerable.Range(0, clients))
            {
                var client = new LifelineClient(new LifelineClientOptions { Uri = uri, Session = new Lifeline.Client.SessionOptions() });
                connected.Add(client);
                await client.StartAsync();
            }

            var commandsBefore = redis is null ? 0 : await redis.CommandsProcessedAsync();
            var callsBefore = redis is null ? null : await redis.CommandCallsAsync();

            var clock = Stopwatch.StartNew();
            var faults = await Task.WhenAll(connected.Select(c => EchoAsync(c, messages)));
            var elapsed = clock.Elapsed;
            var total = (long)clients * messages;
            if (redis is null)
            {
                return new Run(total / elapsed.TotalSeconds, 0, 0, faults.Sum());
            }

            var commands = await redis.CommandsProcessedAsync() - commandsBefore - 2; // minus the two INFO calls
            var calls = await redis.CommandCallsAsync();
            var perMessage = calls.Select(c => (c.Key, PerMessage: (c.Value - callsBefore!.GetValueOrDefault(c.Key)) / (2.0 * total)))
                .Where(c => c.PerMessage >= 0.01 && c.Key != "info").OrderByDescending(c => c.PerMessage).ToList();
            output.WriteLine("    calls per session message: " + string.Join(", ", perMessage.Select(c => $"{c.Key} {c.PerMessage:0.00}")));

            // Every steady-state store operation is one script call (EVALSHA, or EVAL once after a Redis restart); the other
            // commands in the list run inside those scripts (a direct GET only happens when a session is loaded).
            var requests = perMessage.Where(c => c.Key is "evalsha" or "eval" or "publish").Sum(c => c.PerMessage);
            return new Run(total / elapsed.TotalSeconds, requests, commands / (2.0 * total), faults.Sum());
        }
        finally
        {
            foreach (var client in connected)
            {
                await client.DisposeAsync();
            }

            await node.StopAsync();
            await node.DisposeAsync();
        }
    }

    /// <summary>Sends 1..n while reading the echoes; returns how many echoes were missing, repeated or out of order.</summary>
    private static async Task<long> EchoAsync(LifelineClient client, int n)
    {
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[64];
            long faults = 0;
            for (var expected = 1; expected <= n; expected++)
            {
                var result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
                if (result.Status != LifelineReceiveStatus.Message || BinaryPrimitives.ReadInt32BigEndian(buffer) != expected)
                {
                    faults++;
                }
            }

            return faults;
        });
        var payload = new byte[32];
        for (var i = 1; i <= n; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(payload, i);
            await client.SendAsync(payload);
        }

        return await reading;
    }

    private static async Task<WebApplication> StartNodeAsync(RedisProcess? redis)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        builder.Services.AddLifeline();
        builder.Services.AddLifelineSessions();
        if (redis is not null)
        {
            builder.Services.AddLifelineRedis(o =>
            {
                o.Configuration = redis.Configuration;
                o.KeyPrefix = "bench-" + Guid.NewGuid().ToString("N")[..8];
            });
        }

        var app = builder.Build();
        app.MapLifelineSession("/echo", async (session, ct) =>
        {
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                await session.SendAsync(message.Data, message.Type, ct);
            }
        });
        await app.StartAsync();
        return app;
    }
}
