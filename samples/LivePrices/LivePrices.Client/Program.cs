// Live prices console client, in session mode: subscribes to the price feed once per session and prints every tick,
// every state change with the close code that caused it, every resume (with what was replayed) and every session
// loss (with what was lost). Restart the server while it runs: the session resumes and the numbers carry on with no
// gap and no repeat. Kill it with -9 instead: the session is lost, the client says so and subscribes again.
//
//   dotnet run --project samples/LivePrices/LivePrices.Client [ws://127.0.0.1:5000/prices]
using System.Runtime.InteropServices;
using Lifeline.Client;

var uri = new Uri(args.Length > 0 ? args[0] : "ws://127.0.0.1:5000/prices");
const string Subscribe = "subscribe prices";

var options = new LifelineClientOptions
{
    Uri = uri,
    // Sessions (lifeline.v1): both directions numbered, acknowledged and replayed on resume.
    Session = new SessionOptions(),
    KeepAliveInterval = TimeSpan.FromSeconds(10),
    KeepAliveTimeout = TimeSpan.FromSeconds(10),
    // The subscription (the "prices" group) and the feed position travel with the session: subscribe again only when a
    // new session started (after a loss), never after a resume. This runs before queued sends.
    OnReconnected = (reconnected, ct) => reconnected.SessionResumed == false ? reconnected.SendTextAsync(Subscribe, ct) : ValueTask.CompletedTask,
};

await using var client = new LifelineClient(options);
client.StateChanged += (_, e) =>
{
    Console.WriteLine($"state {e.Current}{(e.Close is { } close ? $" after {close}" : "")}{(e.ReconnectDelay is { } delay ? $" retry in {delay.TotalMilliseconds:F0} ms" : "")}");
    if (e.SessionResumed == true)
    {
        Console.WriteLine($"resumed: {e.MessagesReplayedFromServer} replayed by the server, {e.MessagesReplayedToServer} resent by us");
    }
};
client.SessionLost += (_, lost) => Console.WriteLine($"session lost: {lost}");

using var stop = new CancellationTokenSource();
// Ctrl-C or SIGTERM: close cleanly (1000) and print the totals.
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal => { signal.Cancel = true; stop.Cancel(); });
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal => { signal.Cancel = true; stop.Cancel(); });

await client.StartAsync(stop.Token);
await client.SendTextAsync(Subscribe, stop.Token);
long? last = null;
try
{
    await foreach (var message in client.ReadAllAsync(stop.Token))
    {
        var text = message.Text;
        if (!char.IsAsciiDigit(text.FirstOrDefault()))
        {
            Console.WriteLine(text); // subscribed, missed, errors
            continue;
        }

        // A tick: "<seq> <symbol> <price>". Within a session the numbers must follow each other.
        var seq = long.Parse(text.AsSpan(0, text.IndexOf(' ', StringComparison.Ordinal)), System.Globalization.CultureInfo.InvariantCulture);
        if (last is { } previous && seq != previous + 1)
        {
            Console.WriteLine(seq > previous ? $"gap {previous + 1}-{seq - 1}" : $"repeat {seq} after {previous}");
        }

        last = seq;
        Console.WriteLine($"tick {text}");
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    // Ctrl-C or SIGTERM.
}

await client.StopAsync();
Console.WriteLine($"stopped after {client.Statistics.Connects} connections, {client.Statistics.MessagesReceived} messages");
