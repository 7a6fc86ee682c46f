using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Lifeline.Diagnostics;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Lifeline.IntegrationTests.Server;

public sealed class ServerMetricsTests
{
    [Fact]
    public async Task AdmissionAndDrain_AreVisibleOnTheLifelineMeter()
    {
        // Only this host's instruments (Meter.Scope is its IMeterFactory): other tests' servers in the same process
        // must not make these assertions pass.
        await using var host = await LifelineTestHost.StartAsync(o => o.MaxConnections = 1);
        var factory = host.App.Services.GetRequiredService<IMeterFactory>();
        var seen = new ConcurrentQueue<(string Instrument, double Value, string Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == LifelineMetrics.MeterName && instrument.Meter.Scope == factory
                    && instrument.Name.StartsWith("lifeline.server.", StringComparison.Ordinal))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => seen.Enqueue((i.Name, v, Describe(tags))));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => seen.Enqueue((i.Name, v, Describe(tags))));
        listener.Start();

        await using var admitted = await PlainClient.ConnectAsync(host.Uri());
        await using var refused = await PlainClient.ConnectAsync(host.Uri());
        await refused.Closed.WaitAsync(TimeSpan.FromSeconds(15));
        await host.StopAsync();
        await admitted.Closed.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(1, seen.Where(m => m.Instrument == "lifeline.server.accepted").Sum(m => m.Value));
        Assert.Contains(seen, m => m.Instrument == "lifeline.server.connections" && m.Value == 1);
        Assert.Equal(0, seen.Where(m => m.Instrument == "lifeline.server.connections").Sum(m => m.Value));
        Assert.Equal(1, seen.Count(m => m.Instrument == "lifeline.server.rejected" && m.Tags == "reason=capacity"));
        Assert.Equal(1, seen.Count(m => m.Instrument == "lifeline.server.closes_sent" && m.Tags == "close_code=1012"));
        Assert.Single(seen, m => m.Instrument == "lifeline.server.drain_duration");
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
