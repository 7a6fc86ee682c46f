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
        using var measurements = new ServerMeasurements(host);
        var seen = measurements.Seen;

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

    [Fact]
    public async Task ProtocolViolation_TheRuntimesOwnCloseFrame_IsCountedInClosesSent()
    {
        // The runtime fails a connection that breaks the protocol with a Close frame of its own (1002 here). Before, the
        // connection recorded that code but closes_sent did not count it: a conformance run showed no 1002 anywhere.
        var accepted = new TaskCompletionSource<AspNetCore.LifelineConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: (connection, ct) =>
        {
            accepted.TrySetResult(connection);
            return LifelineTestHost.EchoAsync(connection, ct);
        });
        using var measurements = new ServerMeasurements(host);
        var seen = measurements.Seen;
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);
        var connection = await accepted.Task.WaitAsync(TimeSpan.FromSeconds(15));

        await client.SendRawAsync(RawWebSocketClient.Frame(0x1, "reserved"u8.ToArray(), rsv: 2));
        await connection.Completion.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(1002, connection.ClosedWith?.Value);
        Assert.Equal(1, seen.Count(m => m.Instrument == "lifeline.server.closes_sent" && m.Tags == "close_code=1002"));
        Assert.DoesNotContain(seen, m => m.Instrument == "lifeline.server.closes_sent" && m.Tags != "close_code=1002");
    }

    /// <summary>This host's server measurements (Meter.Scope is its IMeterFactory), from now until disposed.</summary>
    private sealed class ServerMeasurements : IDisposable
    {
        private readonly MeterListener _listener;

        public ServerMeasurements(LifelineTestHost host)
        {
            var factory = host.App.Services.GetRequiredService<IMeterFactory>();
            _listener = new MeterListener
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
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Seen.Enqueue((i.Name, v, Describe(tags))));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Seen.Enqueue((i.Name, v, Describe(tags))));
            _listener.Start();
        }

        public ConcurrentQueue<(string Instrument, double Value, string Tags)> Seen { get; } = new();

        public void Dispose() => _listener.Dispose();
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
