// Live prices console client: subscribes to the price feed and prints every tick, and every state change with
// the close code that caused it. Restart the server while it runs: it comes back and subscribes again.
//
//   dotnet run --project samples/LivePrices/LivePrices.Client [ws://127.0.0.1:5000/prices]
using System.Runtime.InteropServices;
using Lifeline.Client;

var uri = new Uri(args.Length > 0 ? args[0] : "ws://127.0.0.1:5000/prices");
const string Subscribe = "subscribe prices";

var options = new LifelineClientOptions
{
    Uri = uri,
    // Sessions (lifeline.v1) will be one option here once the client has them; the sample runs in plain mode today.
    KeepAliveInterval = TimeSpan.FromSeconds(10),
    KeepAliveTimeout = TimeSpan.FromSeconds(10),
    // Plain mode: a new socket has no subscriptions, so subscribe again on every reconnection (this runs before
    // queued sends). With sessions the server keeps the subscription and this hook is not needed.
    OnReconnected = (reconnected, ct) => reconnected.SendTextAsync(Subscribe, ct),
};

await using var client = new LifelineClient(options);
client.StateChanged += (_, e) =>
    Console.WriteLine($"state {e.Current}{(e.Close is { } close ? $" after {close}" : "")}{(e.ReconnectDelay is { } delay ? $" retry in {delay.TotalMilliseconds:F0} ms" : "")}");

using var stop = new CancellationTokenSource();
// Ctrl-C or SIGTERM: close cleanly (1000) and print the totals.
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal => { signal.Cancel = true; stop.Cancel(); });
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal => { signal.Cancel = true; stop.Cancel(); });

await client.StartAsync(stop.Token);
await client.SendTextAsync(Subscribe, stop.Token);
try
{
    await foreach (var message in client.ReadAllAsync(stop.Token))
        Console.WriteLine(message.Text.StartsWith("subscribed", StringComparison.Ordinal) ? message.Text : $"tick {message.Text}");
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    // Ctrl-C or SIGTERM.
}

await client.StopAsync();
Console.WriteLine($"stopped after {client.Statistics.Connects} connections, {client.Statistics.MessagesReceived} messages");
