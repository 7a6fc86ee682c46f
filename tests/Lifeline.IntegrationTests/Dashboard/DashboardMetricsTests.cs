using System.Diagnostics.Metrics;
using Lifeline.AspNetCore.Dashboard;
using Lifeline.Diagnostics;

namespace Lifeline.IntegrationTests.Dashboard;

/// <summary>What the dashboard keeps of the meter "Lifeline" stays bounded and useful whatever values it is fed.</summary>
public sealed class DashboardMetricsTests
{
    [Fact]
    public void ManyApplicationCloseCodes_RegisteredCodesAndLaterInstrumentsKeepTheirHistory_TheRestFoldedIntoOther()
    {
        // A client may close with any code in 3000-4999, and the server sends it back: 900 of them, then a drain's 1012
        // and an instrument first seen afterwards.
        using var metrics = new DashboardMetrics(TimeProvider.System);
        using var meter = new Meter(LifelineMetrics.MeterName);
        var name = $"lifeline.test.closes_{Guid.NewGuid():N}";
        var closes = meter.CreateCounter<long>(name);
        for (var code = 4100; code < 5000; code++)
        {
            closes.Add(1, new KeyValuePair<string, object?>("close_code", code));
        }

        closes.Add(1, new KeyValuePair<string, object?>("close_code", 1012));
        var laterName = $"lifeline.test.later_{Guid.NewGuid():N}";
        meter.CreateCounter<long>(laterName).Add(5);

        var snapshot = metrics.Snapshot(metrics.Now);
        var closesSeen = snapshot.Single(i => i.Name == name);
        var later = snapshot.Single(i => i.Name == laterName);

        // Before, past 512 series every new one got no history: the later instrument and the drain's 1012 read 0 per
        // second for good, and every code kept an entry of its own in each snapshot.
        Assert.Equal(5, later.PerSecond.Sum());
        Assert.Equal(1, closesSeen.ByCode[1012].PerSecond.Sum());
        Assert.InRange(closesSeen.ByCode.Count, 2, DashboardMetrics.MaxUnregisteredCodes + 2);
        Assert.Equal(900 - DashboardMetrics.MaxUnregisteredCodes, closesSeen.ByCode[DashboardMetrics.OtherCodes].Total);
        Assert.Equal(901, closesSeen.Total);
        Assert.Equal(901, closesSeen.ByCode.Values.Sum(c => c.PerSecond.Sum()));
    }

    [Fact]
    public void NonFiniteMeasurement_IsLeftOut_TheSnapshotStaysFinite()
    {
        using var metrics = new DashboardMetrics(TimeProvider.System);
        using var meter = new Meter(LifelineMetrics.MeterName);
        var name = $"lifeline.test.values_{Guid.NewGuid():N}";
        var values = meter.CreateHistogram<double>(name);
        values.Record(2.5);
        values.Record(double.NaN);
        values.Record(double.PositiveInfinity);

        var instrument = metrics.Snapshot(metrics.Now).Single(i => i.Name == name);

        // Before, the NaN stayed in the sum for good, and /data and the live feed failed to serialize every snapshot.
        Assert.Equal(2.5, instrument.Sum);
        Assert.Equal(1, instrument.Total);
    }
}
