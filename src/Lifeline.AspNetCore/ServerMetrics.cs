using System.Diagnostics.Metrics;

namespace Lifeline.AspNetCore;

/// <summary>Server instruments on the meter "Lifeline" (see <see cref="Lifeline.Diagnostics.LifelineMetrics"/>).</summary>
internal static class ServerMetrics
{
    private static readonly Meter Meter = new(Lifeline.Diagnostics.LifelineMetrics.MeterName);

    public static readonly UpDownCounter<long> OpenConnections =
        Meter.CreateUpDownCounter<long>("lifeline.server.connections", "{connection}", "WebSocket connections open now.");

    public static readonly Counter<long> Accepted =
        Meter.CreateCounter<long>("lifeline.server.accepted", "{connection}", "Connections accepted and handed to the handler.");

    public static readonly Counter<long> Rejected =
        Meter.CreateCounter<long>("lifeline.server.rejected", "{connection}", "Upgrades closed at once, tagged with the reason (capacity, rate, draining, unauthorized).");

    public static readonly Counter<long> ClosesSent =
        Meter.CreateCounter<long>("lifeline.server.closes_sent", "{close}", "Close frames sent, tagged with the close code.");

    public static readonly Counter<long> SlowConsumers =
        Meter.CreateCounter<long>("lifeline.server.slow_consumers", "{connection}", "Connections closed with 4008 because they fell behind their outbound buffer or send timeout.");

    public static readonly Histogram<double> DrainDuration =
        Meter.CreateHistogram<double>("lifeline.server.drain_duration", "s", "How long a drain took, from the first Close frame to the last connection gone.");
}
