using System.Diagnostics;
using System.Globalization;
using Lifeline.Cli;
using Lifeline.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Lifeline.IntegrationTests.Redis;

/// <summary>
/// Three <c>lifeline serve --redis</c> nodes as real OS processes on 127.0.0.1, behind a real haproxy (round robin),
/// sharing sessions through a real redis-server. Graceful restarts are SIGTERM (drain with 1012) and a new process on
/// the same port; the kill is a real SIGKILL. Session clients in the test process stream numbered messages to /ws and
/// check the echoes: each number back exactly once and in order proves both directions. Clients: LIFELINE_REDIS_CLIENTS
/// (default 300, the number of issue 14; about 15-45 s on two shared cores).
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class ProcessClusterTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static int ClientCount => int.TryParse(Environment.GetEnvironmentVariable("LIFELINE_REDIS_CLIENTS"), out var n) ? n : 300;

    private static ToolProcess StartNode(int port, string redis) =>
        ToolProcess.Start("serve", "--urls", $"http://127.0.0.1:{port}", "--redis", redis, "--hint-min", "0.05", "--hint-max", "0.3", "--drain-timeout", "10");

    private static Task TrafficFlowsAsync(IReadOnlyList<StreamingClient> clients) => StreamingClient.TrafficFlowsAsync(clients);

    [Fact]
    public async Task RollingSigtermThenSigkill_ServeProcessesBehindHaproxy_EveryMessageOnceAndInOrderBothWays()
    {
        var clock = Stopwatch.StartNew();
        await using var redis = await RedisServer.StartNewAsync();
        var ports = Enumerable.Range(0, 3).Select(_ => RedisServer.FreePort()).ToArray();
        var nodes = ports.Select(p => StartNode(p, redis.Configuration)).ToArray();
        HaProxy? proxy = null;
        StreamingClient[] clients = [];
        try
        {
            await Task.WhenAll(nodes.Select(n => n.WaitForOutputAsync("press Ctrl-C", Bound)));
            proxy = await HaProxy.StartAsync(ports);
            clients = [.. Enumerable.Range(0, ClientCount).Select(_ => new StreamingClient(proxy.Uri("/ws")))];
            await Task.WhenAll(clients.Select(c => c.StartAsync(TimeSpan.FromMilliseconds(50))));
            await TrafficFlowsAsync(clients);

            for (var i = 0; i < nodes.Length; i++)
            {
                nodes[i].Signal(ToolProcess.SIGTERM);  // drain: 1012 to its clients, who resume on the other nodes
                Assert.Equal(ExitCodes.Success, await nodes[i].Exit.WaitAsync(Bound));
                Assert.Contains("draining", nodes[i].Output, StringComparison.Ordinal);
                await nodes[i].DisposeAsync();
                nodes[i] = StartNode(ports[i], redis.Configuration);
                await nodes[i].WaitForOutputAsync("press Ctrl-C", Bound);
                await TrafficFlowsAsync(clients);
            }

            var resumedBeforeKill = clients.Sum(c => c.SessionCounts.Resumed);
            nodes[1].Signal(ToolProcess.SIGKILL);      // no drain, no Close frames: its sockets and its Redis link just drop
            Assert.Equal(128 + ToolProcess.SIGKILL, await nodes[1].Exit.WaitAsync(Bound));
            Assert.DoesNotContain("draining", nodes[1].Output, StringComparison.Ordinal);
            await TrafficFlowsAsync(clients);
            await Task.WhenAll(clients.Select(c => c.StopSendingAsync()));
            await StreamingClient.AllEchoesAsync(clients);

            var sent = clients.Sum(c => c.Sent);
            var resumed = clients.Sum(c => c.SessionCounts.Resumed);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{clients.Length} clients, {sent} messages each way, sessions resumed {resumedBeforeKill} by the drains and {resumed - resumedBeforeKill} after the kill, sessions lost {clients.Sum(c => c.SessionsLost)}, {clock.Elapsed.TotalSeconds:F1} s"));
            foreach (var client in clients)
            {
                Assert.Equal(Enumerable.Range(1, client.Sent), client.Received); // every echo once, in order: both directions
                Assert.Equal(0, client.SessionsLost);
                Assert.Equal(1, client.SessionCounts.Started);                 // one session from start to end, never a new one
            }

            Assert.True(resumedBeforeKill >= clients.Length / 3, $"the drains moved sessions to other nodes ({resumedBeforeKill} resumes)");
            Assert.True(resumed > resumedBeforeKill, "the killed node's sessions resumed on the others");
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
            if (proxy is not null)
            {
                await proxy.DisposeAsync();
            }

            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }
}
