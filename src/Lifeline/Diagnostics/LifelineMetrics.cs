using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Lifeline.Diagnostics;

/// <summary>
/// The instruments of the meter "Lifeline" (OpenTelemetry picks them up with <c>AddMeter("Lifeline")</c>).
/// Client instruments start with <c>lifeline.client.</c>, server ones with <c>lifeline.server.</c>.
/// </summary>
public static class LifelineMetrics
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "Lifeline";

    internal static readonly Meter Meter = new(MeterName, typeof(LifelineMetrics).Assembly.GetName().Version?.ToString());

    internal static readonly Counter<long> ClientConnects =
        Meter.CreateCounter<long>("lifeline.client.connects", "{connection}", "Connections opened by Lifeline clients.");

    internal static readonly Counter<long> ClientReconnectAttempts =
        Meter.CreateCounter<long>("lifeline.client.reconnect_attempts", "{attempt}", "Reconnect attempts scheduled, tagged with the close code that caused them.");

    internal static readonly Histogram<double> ClientTimeToReconnect =
        Meter.CreateHistogram<double>("lifeline.client.time_to_reconnect", "s", "Time from losing a connection to having a new one.");

    internal static readonly Counter<long> ClientMessagesQueued =
        Meter.CreateCounter<long>("lifeline.client.messages_queued", "{message}", "Messages queued while not connected.");

    internal static readonly Counter<long> ClientMessagesDropped =
        Meter.CreateCounter<long>("lifeline.client.messages_dropped", "{message}", "Queued messages dropped, tagged with the reason (queue_full, stale, closed).");

    internal static readonly Counter<long> ClientSessionsStarted =
        Meter.CreateCounter<long>("lifeline.client.sessions_started", "{session}", "Sessions started by Lifeline clients (Welcome received).");

    internal static readonly Counter<long> ClientSessionsResumed =
        Meter.CreateCounter<long>("lifeline.client.sessions_resumed", "{session}", "Sessions resumed by Lifeline clients (Resumed received).");

    internal static readonly Counter<long> ClientSessionsLost =
        Meter.CreateCounter<long>("lifeline.client.sessions_lost", "{session}", "Sessions that could not continue losslessly, seen by Lifeline clients.");

    internal static readonly Counter<long> ClientMessagesReplayed =
        Meter.CreateCounter<long>("lifeline.client.messages_replayed", "{message}", "Messages a Lifeline client resent after a resume.");

    /// <summary>The tag name for close codes; its value is always an <see cref="int"/>, on the client and the server alike.</summary>
    public const string CloseCodeTagName = "close_code";

    // An attempt that failed before any connection has no close code: the tag is left out rather than faked.
    internal static TagList CloseCodeTag(int? code) => code is { } value ? new() { { CloseCodeTagName, value } } : default;
}
