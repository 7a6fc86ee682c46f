using System.Diagnostics;
using Lifeline.Client;
using Lifeline.FaultProxy;
using Websocket.Client;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// Scenario 5: both clients, each with its library's defaults, connected to a Lifeline server through a
/// <see cref="TcpFaultProxy"/> of its own; then both links are black-holed at once (bytes are held both ways, nothing is
/// closed) and the time until each client notices (Lifeline leaves Connected; Websocket.Client raises
/// DisconnectionHappened) is taken. One proxy per client: what one client does to its link (closing it once it noticed)
/// cannot end the other's.
/// </summary>
internal static class DeadLinkScenario
{
    public static async Task RunAsync(SuiteSettings settings, TextWriter output)
    {
        await using var host = await LifelineHost.StartAsync();
        await using var lifelineProxy = new TcpFaultProxy("127.0.0.1", host.Port).Start();
        await using var otherProxy = new TcpFaultProxy("127.0.0.1", host.Port).Start();

        await using var lifeline = new LifelineClient(new LifelineClientOptions { Uri = new Uri($"ws://127.0.0.1:{lifelineProxy.EndPoint.Port}/plain") });
        var lifelineNoticed = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var connectDeadline = new CancellationTokenSource(TimeSpan.FromMinutes(1)); // a client that cannot connect fails the run
        await lifeline.StartAsync(connectDeadline.Token);
        lifeline.StateChanged += (_, _) =>
        {
            if (lifeline.State != LifelineClientState.Connected)
            {
                lifelineNoticed.TrySetResult(Stopwatch.GetTimestamp());
            }
        };

        using var other = new WebsocketClient(new Uri($"ws://127.0.0.1:{otherProxy.EndPoint.Port}/plain"));
        var otherNoticed = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        DisconnectionType? otherHow = null;
        using var subscription = other.DisconnectionHappened.Subscribe(info =>
        {
            otherHow ??= info.Type; // the first disconnection's, set before the timing is handed over
            otherNoticed.TrySetResult(Stopwatch.GetTimestamp());
        });
        await other.Start().WaitAsync(connectDeadline.Token);

        var start = Stopwatch.GetTimestamp();
        lifelineProxy.SilenceAll();
        otherProxy.SilenceAll();
        var lifelineTime = await TimeAsync(lifelineNoticed.Task, start, settings.DeadLinkBound);
        var otherTime = await TimeAsync(otherNoticed.Task, start, settings.DeadLinkBound);
        var table = new Table("client (defaults)", "noticed after", "ratio to Websocket.Client", "how");
        table.Add("Lifeline", lifelineTime is { } l ? l : $"not within {Table.Format(settings.DeadLinkBound)}", lifelineTime is { } a && otherTime is { } b ? Table.Ratio(a.TotalSeconds, b.TotalSeconds) : "-",
            lifeline.LastClose is { } close ? $"{close.Code.Value} {close.Cause}" : "-");
        table.Add("Websocket.Client 5.5.1", otherTime is { } o ? o : $"not within {Table.Format(settings.DeadLinkBound)}", "1.00x",
            otherHow switch { DisconnectionType.NoMessageReceived => "no message for ReconnectTimeout", { } how => how.ToString(), null => "-" });
        await output.WriteLineAsync($"### 5. Dead-link detection through a black hole\n\n{table}");
        lifelineProxy.ResetAll();
        otherProxy.ResetAll();
    }

    // Each callback stamps its own moment, so waiting for one client does not delay the other's figure.
    private static async Task<TimeSpan?> TimeAsync(Task<long> noticed, long start, TimeSpan bound)
    {
        var left = bound - Stopwatch.GetElapsedTime(start);
        if (left > TimeSpan.Zero)
        {
            await Task.WhenAny(noticed, Task.Delay(left));
        }

        return noticed.IsCompletedSuccessfully ? Stopwatch.GetElapsedTime(start, noticed.Result) : null;
    }
}
