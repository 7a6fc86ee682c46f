using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.FaultProxy;
using Lifeline.Reconnect;

namespace Lifeline.Benchmarks;

/// <summary>
/// The full seeded fault run (the same scenario as the integration test SessionFaultTests, at bench size): client and
/// server each send <c>count</c> numbered messages through a fault proxy while resets, FINs, black holes, 1013 sheds and
/// graceful restarts (a new Kestrel host on the same port, default store, drain file) are injected; prints what each
/// side received. Usage: <c>session-faults [count] [seed] [faultEvery]</c>; exit code 0 when both sides got 1..count once
/// each, in order.
/// </summary>
internal static class SessionFaultRunner
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100_000;
        var seed = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 42;
        var faultEvery = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : Math.Max(50, count / 12);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"session-faults: {count} messages each way, seed {seed}, a fault every {faultEvery} client sends"));
        var started = Stopwatch.GetTimestamp();

        var random = new Random(seed);
        var log = new NumberedLog { ServerSendCount = count };
        var drain = Path.Combine(Path.GetTempPath(), $"lifeline-bench-fault-{Guid.NewGuid():N}.bin");
        var host = await SessionServer.StartAsync(drain, log);
        var port = host.Port;
        var faults = new List<string>();
        await using var proxy = new TcpFaultProxy("127.0.0.1", port).Start();
        var options = new LifelineClientOptions
        {
            Uri = new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/numbered"),
            ReconnectPolicy = new DefaultReconnectPolicy(new ReconnectPolicyOptions { BaseDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(500) }),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            CloseTimeout = TimeSpan.FromSeconds(2),
            KeepAliveInterval = TimeSpan.FromMilliseconds(250),
            KeepAliveTimeout = TimeSpan.FromMilliseconds(750),
            Session = new SessionOptions(),
        };
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var received = new List<int>(count);
        var receivedCount = 0;
        using var bound = new CancellationTokenSource(TimeSpan.FromMinutes(4));

        // Ctrl-C or SIGTERM ends the run (with its report and cleanup); a second one exits at once, in case cleanup hangs.
        // The Kestrel hosts' console lifetimes also see the signal but only stop themselves, so without this the run waits on.
        var signals = 0;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.Increment(ref signals) > 1)
            {
                Environment.Exit(130);
            }

            Console.WriteLine($"{context.Signal}: stopping the run");
            bound.Cancel();
        }

        using var onSigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var onSigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        try
        {
            var reading = Task.Run(async () =>
            {
                await foreach (var message in client.ReadAllAsync(bound.Token))
                {
                    received.Add(SessionServer.Number(message.Data));
                    Volatile.Write(ref receivedCount, received.Count);
                    if (received.Count == count)
                    {
                        return;
                    }
                }
            }, bound.Token);
            for (var i = 1; i <= count; i++)
            {
                await client.SendAsync(SessionServer.Number(i), cancellationToken: bound.Token);
                if (i % 20 == 0)
                {
                    await Task.Delay(2); // pace the sends so the faults land mid-stream in both directions
                }

                if (i % 10_000 == 0)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  sent {i}; client received {Volatile.Read(ref receivedCount)}, server received {log.Received.Count}; {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s"));
                }

                if (i % faultEvery == 0)
                {
                    var kind = random.Next(5);
                    faults.Add(kind switch { 0 => "reset", 1 => "fin", 2 => "blackhole", 3 => "shed-1013", _ => "restart" });
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  at {i}: {faults[^1]}"));
                    switch (kind)
                    {
                        case 0:
                            proxy.ResetAll();
                            break;
                        case 1:
                            proxy.CloseAllWithFin();
                            break;
                        case 2:
                            proxy.SilenceAll();
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
                            host = await SessionServer.StartAsync(drain, log, port);
                            break;
                    }
                }
            }

            await reading;
            while (log.Received.Count < count && !bound.IsCancellationRequested)
            {
                await Task.Delay(50);
            }
        }
        catch (OperationCanceledException) when (bound.IsCancellationRequested)
        {
            Console.WriteLine(Volatile.Read(ref signals) > 0 ? "interrupted; what arrived so far:" : "gave up after 4 minutes; what arrived so far:");
        }
        finally
        {
            await host.DisposeAsync();
            File.Delete(drain);
        }

        var server = log.Received.ToList();
        var counts = client.SessionCounts;
        var clientOk = Report("client received", received, count);
        var serverOk = Report("server received", server, count);
        Console.WriteLine($"faults ({faults.Count}): {string.Join(",", faults)}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"client sessions: started {counts.Started}, resumed {counts.Resumed}, lost {counts.Lost}; server handler starts {log.HandlerStarts}, restored from the drain file {log.RestoredStarts}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"elapsed {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s"));
        var ok = clientOk && serverOk && counts.Lost == 0 && Volatile.Read(ref signals) == 0;
        Console.WriteLine(ok ? "OK: every message exactly once and in order, both ways" : "FAILED");
        return ok ? 0 : 1;
    }

    private static bool Report(string what, List<int> numbers, int count)
    {
        var distinct = numbers.Distinct().Count();
        var inOrder = numbers.SequenceEqual(Enumerable.Range(1, numbers.Count));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what}: {numbers.Count} messages, {distinct} distinct, duplicates {numbers.Count - distinct}, missing {count - distinct}, in order {(inOrder ? "yes" : "no")}"));
        return numbers.Count == count && inOrder;
    }
}
