using System.Globalization;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>
/// The seeded fault test: both sides send N numbered messages while resets, FINs, black holes, 1013 sheds and graceful
/// restarts are injected; each side must receive every message exactly once and in order. N and the seed come from
/// LIFELINE_SESSION_FAULT_N and LIFELINE_SESSION_FAULT_SEED (defaults 3000 and 20240611) so bench/ can run 100,000.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class SessionFaultTests
{
    public static int Count => int.TryParse(Environment.GetEnvironmentVariable("LIFELINE_SESSION_FAULT_N"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 3000;

    public static int Seed => int.TryParse(Environment.GetEnvironmentVariable("LIFELINE_SESSION_FAULT_SEED"), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 20240611;

    [Fact]
    public async Task SeededFaults_EverySideReceivesEveryMessageOnceInOrder()
    {
        var (client, server, faults) = await RunAsync(Count, Seed, faultEvery: Math.Max(50, Count / 12));
        Assert.True(faults.Count > 0);
        Console.WriteLine($"faults: {string.Join(",", faults)}");
        Assert.Equal(Enumerable.Range(1, Count), client);
        Assert.Equal(Enumerable.Range(1, Count), server);
    }

    /// <summary>Runs the scenario; returns what each side received and the faults injected (for bench/ to print).</summary>
    public static async Task<(List<int> Client, List<int> Server, List<string> Faults)> RunAsync(int count, int seed, int faultEvery)
    {
        var random = new Random(seed);
        var log = new NumberedServerLog { ServerSendCount = count };
        var drain = Path.Combine(Path.GetTempPath(), $"lifeline-fault-{Guid.NewGuid():N}.bin");
        var host = await SessionTestHost.StartAsync(log, drain, LoopbackPorts.ForRestartableServer());
        var port = host.Port;
        var faults = new List<string>();
        await using var proxy = new TcpFaultProxy("127.0.0.1", port).Start();
        var options = SessionResumeTests.SessionClient(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/numbered"));
        options.KeepAliveInterval = TimeSpan.FromMilliseconds(250);
        options.KeepAliveTimeout = TimeSpan.FromMilliseconds(750);
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        try
        {
            var received = await SessionResumeTests.ExchangeAsync(client, log, count, async i =>
            {
                if (i % 20 == 0)
                {
                    await Task.Delay(2); // pace the sends so the faults land mid-stream in both directions
                }

                if (i % faultEvery != 0)
                {
                    return;
                }

                var kind = random.Next(5);
                faults.Add(kind switch { 0 => "reset", 1 => "fin", 2 => "blackhole", 3 => "shed-1013", _ => "restart" });
                switch (kind)
                {
                    case 0:
                        proxy.ResetAll();
                        break;
                    case 1:
                        proxy.CloseAllWithFin();
                        break;
                    case 2:
                        proxy.SilenceAll(); // found by the client's keep-alive
                        break;
                    case 3:
                        foreach (var session in host.Sessions.Sessions)
                        {
                            if (session.Connection is { } connection)
                            {
                                await connection.CloseAsync(CloseCode.TryAgainLater, "Try Again Later; retry-after-ms=100");
                            }
                        }

                        break;
                    default:
                        await host.StopAsync();
                        host = await SessionTestHost.StartAsync(log, drain, port);
                        break;
                }
            }, TimeSpan.FromSeconds(90));

            Assert.Null(client.LastSessionLost);
            var counts = client.SessionCounts;
            faults.Add($"[sessions started {counts.Started}, resumed {counts.Resumed}, lost {counts.Lost}; handler starts {log.HandlerStarts}, restored {log.ResumedStarts}]");
            return (received, [.. log.Received], faults);
        }
        finally
        {
            await host.DisposeAsync();
        }
    }
}
