using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Lifeline.Diagnostics;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

public sealed class ServerMetricsTests
{
    [Fact]
    public async Task AdmissionAndDrain_AreVisibleOnTheLifelineMeter()
    {
        var seen = new ConcurrentQueue<(string Instrument, double Value, string Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == LifelineMetrics.MeterName && instrument.Name.StartsWith("lifeline.server.", StringComparison.Ordinal))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => seen.Enqueue((i.Name, v, Describe(tags))));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => seen.Enqueue((i.Name, v, Describe(tags))));
        listener.Start();

        await using var host = await LifelineTestHost.StartAsync(o => o.MaxConnections = 1);
        await using var admitted = await PlainClient.ConnectAsync(host.Uri());
        await using var refused = await PlainClient.ConnectAsync(host.Uri());
        await refused.Closed.WaitAsync(TimeSpan.FromSeconds(15));
        await host.StopAsync();
        await admitted.Closed.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Contains(seen, m => m.Instrument == "lifeline.server.accepted");
        Assert.Contains(seen, m => m.Instrument == "lifeline.server.connections" && m.Value == 1);
        Assert.Contains(seen, m => m.Instrument == "lifeline.server.rejected" && m.Tags.Contains("reason=capacity", StringComparison.Ordinal));
        Assert.Contains(seen, m => m.Instrument == "lifeline.server.closes_sent" && m.Tags.Contains("close_code=1012", StringComparison.Ordinal));
        Assert.Contains(seen, m => m.Instrument == "lifeline.server.drain_duration");
    }

    private static string Describe(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var parts = new List<string>();
        foreach (var tag in tags)
        {
            parts.Add($"{tag.Key}={tag.Value}");
        }

        return string.Join(",", parts);
    }
}
