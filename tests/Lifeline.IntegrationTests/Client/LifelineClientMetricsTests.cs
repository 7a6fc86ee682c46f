using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Lifeline.Client;
using Lifeline.Diagnostics;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Lifeline.IntegrationTests.Client;

public sealed class LifelineClientMetricsTests
{
    [Fact]
    public async Task Reconnect_IsVisibleOnTheLifelineMeter()
    {
        // This client's own meter factory: other clients in the process (tests running in parallel) cannot feed the listener.
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meterFactory = services.GetRequiredService<IMeterFactory>();
        var measurements = new ConcurrentQueue<(string Instrument, double Value, int? CloseCode)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == LifelineMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, meterFactory))
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
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.MeterFactory = meterFactory;
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        server.AbortAll();
        await states.NextAsync(LifelineClientState.Reconnecting);
        await states.NextAsync(LifelineClientState.Connected);

        // Exactly this client's story: two connections, one reconnect after a 1006, one reconnect time.
        Assert.Equal(2, measurements.Count(m => m.Instrument == "lifeline.client.connects"));
        Assert.Equal([1006], measurements.Where(m => m.Instrument == "lifeline.client.reconnect_attempts").Select(m => m.CloseCode).ToArray());
        Assert.Single(measurements, m => m.Instrument == "lifeline.client.time_to_reconnect" && m.Value >= 0);
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
