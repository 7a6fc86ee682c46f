using System.Diagnostics.Metrics;

namespace Lifeline.AspNetCore;

/// <summary>
/// Server instruments on the meter "Lifeline" (see <see cref="Lifeline.Diagnostics.LifelineMetrics"/>), one set per
/// <see cref="LifelineServer"/>. The meter comes from the host's <see cref="IMeterFactory"/> when there is one (ASP.NET
/// Core hosts register it), so a listener can tell this application's measurements (<c>Meter.Scope</c> is the factory)
/// from another's in the same process.
/// </summary>
internal sealed class ServerMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public ServerMetrics(IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(Lifeline.Diagnostics.LifelineMetrics.MeterName) ?? new Meter(Lifeline.Diagnostics.LifelineMetrics.MeterName);
        _ownsMeter = meterFactory is null;
        OpenConnections = _meter.CreateUpDownCounter<long>("lifeline.server.connections", "{connection}", "WebSocket connections open now.");
        Accepted = _meter.CreateCounter<long>("lifeline.server.accepted", "{connection}", "Connections accepted and handed to the handler.");
        Rejected = _meter.CreateCounter<long>("lifeline.server.rejected", "{connection}", "Upgrades closed at once, tagged with the reason (capacity, rate, draining, unauthorized).");
        ClosesSent = _meter.CreateCounter<long>("lifeline.server.closes_sent", "{close}", "Close frames sent, tagged with the close code.");
        SlowConsumers = _meter.CreateCounter<long>("lifeline.server.slow_consumers", "{connection}", "Connections closed with 4008 because they fell behind their outbound buffer or send timeout.");
        DrainDuration = _meter.CreateHistogram<double>("lifeline.server.drain_duration", "s", "How long a drain took, from the first Close frame to the last connection gone.");
    }

    public UpDownCounter<long> OpenConnections { get; }

    public Counter<long> Accepted { get; }

    public Counter<long> Rejected { get; }

    public Counter<long> ClosesSent { get; }

    public Counter<long> SlowConsumers { get; }

    public Histogram<double> DrainDuration { get; }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose(); // a factory's meters are the factory's to dispose
        }
    }
}
