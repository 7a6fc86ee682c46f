using System.Diagnostics.Metrics;

namespace Lifeline.Diagnostics;

/// <summary>
/// A client's instruments on the meter "Lifeline". Clients built without a meter factory share one process-wide set;
/// a client given <see cref="Client.LifelineClientOptions.MeterFactory"/> gets instruments on that factory's meter,
/// so a listener can tell its measurements apart (<c>Instrument.Meter.Scope</c> is the factory).
/// </summary>
internal sealed class ClientInstruments
{
    private ClientInstruments(Meter meter)
    {
        Connects = meter.CreateCounter<long>("lifeline.client.connects", "{connection}", "Connections opened by Lifeline clients.");
        ReconnectAttempts = meter.CreateCounter<long>("lifeline.client.reconnect_attempts", "{attempt}", "Reconnect attempts scheduled, tagged with the close code that caused them.");
        TimeToReconnect = meter.CreateHistogram<double>("lifeline.client.time_to_reconnect", "s", "Time from losing a connection to having a new one.");
        MessagesQueued = meter.CreateCounter<long>("lifeline.client.messages_queued", "{message}", "Messages queued while not connected.");
        MessagesDropped = meter.CreateCounter<long>("lifeline.client.messages_dropped", "{message}", "Queued messages dropped, tagged with the reason (queue_full, stale, closed, too_large).");
        SessionsStarted = meter.CreateCounter<long>("lifeline.client.sessions_started", "{session}", "Sessions started by Lifeline clients (Welcome received).");
        SessionsResumed = meter.CreateCounter<long>("lifeline.client.sessions_resumed", "{session}", "Sessions resumed by Lifeline clients (Resumed received).");
        SessionsLost = meter.CreateCounter<long>("lifeline.client.sessions_lost", "{session}", "Sessions that could not continue losslessly, seen by Lifeline clients.");
        MessagesReplayed = meter.CreateCounter<long>("lifeline.client.messages_replayed", "{message}", "Messages a Lifeline client resent after a resume.");
    }

    /// <summary>The process-wide set, on <see cref="LifelineMetrics.Meter"/>.</summary>
    public static ClientInstruments Shared { get; } = new(LifelineMetrics.Meter);

    public Counter<long> Connects { get; }

    public Counter<long> ReconnectAttempts { get; }

    public Histogram<double> TimeToReconnect { get; }

    public Counter<long> MessagesQueued { get; }

    public Counter<long> MessagesDropped { get; }

    public Counter<long> SessionsStarted { get; }

    public Counter<long> SessionsResumed { get; }

    public Counter<long> SessionsLost { get; }

    public Counter<long> MessagesReplayed { get; }

    /// <summary>The set for one client: on the factory's meter when there is a factory, the shared set otherwise.</summary>
    public static ClientInstruments For(IMeterFactory? factory) =>
        factory is null ? Shared : new(factory.Create(LifelineMetrics.MeterName, typeof(LifelineMetrics).Assembly.GetName().Version?.ToString()));
}
