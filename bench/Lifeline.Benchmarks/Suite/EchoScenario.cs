using System.Diagnostics;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.Reconnect;
using Websocket.Client;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// Scenario 3: echo round trip, one 32-byte message in flight at a time, against one Kestrel server whose
/// <c>/session</c> endpoint (<c>MapLifelineSession</c>) echoes in both modes, so all four clients meet the same server.
/// Each message's latency is taken with <see cref="Stopwatch.GetTimestamp"/> from before the send to the echo handed
/// to the application; p50 and p99 over the measured messages after a warm-up.
/// </summary>
internal static class EchoScenario
{
    public static async Task RunAsync(SuiteSettings settings, TextWriter output)
    {
        await using var host = await LifelineHost.StartAsync();
        var uri = host.Uri("/session");
        var table = new Table("client", "p50 µs", "p50 ratio", "p99 µs", "p99 ratio", "mean µs");
        var results = new List<(string Kind, double P50, double P99, double Mean)>();
        for (var kind = 0; kind < ThroughputScenario.Kinds.Length; kind++)
        {
            var samples = await MeasureAsync(kind, uri, settings.EchoWarmup, settings.EchoMessages);
            Array.Sort(samples);
            results.Add((ThroughputScenario.Kinds[kind], Percentile(samples, 0.50), Percentile(samples, 0.99), samples.Average()));
        }

        foreach (var r in results)
        {
            table.Add(r.Kind, r.P50, Table.Ratio(r.P50, results[0].P50), r.P99, Table.Ratio(r.P99, results[0].P99), r.Mean);
        }

        await output.WriteLineAsync($"### 3. Echo round trip, 32 B, {settings.EchoMessages} messages per client (ratio: lower is better)\n\n{table}");
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static async Task<double[]> MeasureAsync(int kind, Uri uri, int warmup, int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var ct = timeout.Token;
        var payload = new byte[32];
        var samples = new double[count];
        Func<Task> roundTrip;
        Func<Task> cleanup;
        switch (kind)
        {
            case 0:
                {
                    var socket = new ClientWebSocket();
                    await socket.ConnectAsync(uri, ct);
                    var buffer = new byte[4096];
                    roundTrip = async () =>
                    {
                        await socket.SendAsync(payload, WebSocketMessageType.Binary, true, ct);
                        ValueWebSocketReceiveResult result;
                        do
                        {
                            result = await socket.ReceiveAsync(buffer.AsMemory(), ct);
                        }
                        while (!result.EndOfMessage);
                    };
                    cleanup = async () =>
                    {
                        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, ct);
                        socket.Dispose();
                    };
                    break;
                }

            case 1:
            case 2:
                {
                    var options = new LifelineClientOptions { Uri = uri, ReconnectPolicy = NeverReconnectPolicy.Instance };
                    if (kind == 2)
                    {
                        options.Session = new SessionOptions();
                    }

                    var client = new LifelineClient(options);
                    await client.StartAsync(ct);
                    var buffer = new byte[64 * 1024];
                    // Both Lifeline rows use the fastest documented APIs: a send without a token (written straight to the
                    // socket when nothing is queued) and ReceiveAsync into the caller's memory without a token (a
                    // cancellable read first waits for data with a zero-byte read); the run's bound disposes the client.
                    var bound = ct.Register(() => _ = client.DisposeAsync().AsTask());
                    roundTrip = async () =>
                    {
                        await client.SendAsync(payload, WebSocketMessageType.Binary);
                        _ = await client.ReceiveAsync(buffer);
                    };
                    cleanup = async () =>
                    {
                        await bound.DisposeAsync();
                        await client.DisposeAsync();
                    };
                    break;
                }

            default:
                {
                    var client = new WebsocketClient(uri) { IsReconnectionEnabled = false };
                    TaskCompletionSource? pending = null;
                    var subscription = client.MessageReceived.Subscribe(_ => Volatile.Read(ref pending)?.TrySetResult());
                    await client.Start();
                    roundTrip = async () =>
                    {
                        var echo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        Volatile.Write(ref pending, echo);
                        await client.SendInstant(payload);
                        await echo.Task.WaitAsync(ct);
                    };
                    cleanup = async () =>
                    {
                        subscription.Dispose();
                        await client.Stop(WebSocketCloseStatus.NormalClosure, "");
                        client.Dispose();
                    };
                    break;
                }
        }

        for (var i = 0; i < warmup; i++)
        {
            await roundTrip();
        }

        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await roundTrip();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        await cleanup();
        return samples;
    }
}
