using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Lifeline.Client;
using Lifeline.Diagnostics;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Client;

public sealed class LifelineClientMetricsTests
{
    [Fact]
    public async Task Reconnect_IsVisibleOnTheLifelineMeter()
    {
        var measurements = new ConcurrentQueue<(string Instrument, double Value, int? CloseCode)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == LifelineMetrics.MeterName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            measurements.Enqueue((instrument.Name, value, CloseCodeOf(tags))));
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
            measurements.Enqueue((instrument.Name, value, CloseCodeOf(tags))));
        listener.Start();

        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        server.AbortAll();
        await states.NextAsync(LifelineClientState.Reconnecting);
        await states.NextAsync(LifelineClientState.Connected);

        Assert.Contains(measurements, m => m.Instrument == "lifeline.client.connects");
        Assert.Contains(measurements, m => m.Instrument == "lifeline.client.reconnect_attempts" && m.CloseCode == 1006);
        Assert.Contains(measurements, m => m.Instrument == "lifeline.client.time_to_reconnect" && m.Value >= 0);
    }

    private static int? CloseCodeOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "close_code")
            {
                return tag.Value as int?;
            }
        }

        return null;
    }
}
