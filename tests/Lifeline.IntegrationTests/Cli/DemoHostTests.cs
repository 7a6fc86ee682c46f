using System.Net;
using System.Net.Sockets;
using Lifeline.Cli.Demo;

namespace Lifeline.IntegrationTests.Cli;

public sealed class DemoHostTests
{
    [Fact]
    public async Task StartAsync_PortTaken_FailsWithTheErrorTheRestartRetries()
    {
        // The demo's restart starts the new host on the old port and retries while something else holds it. Kestrel
        // wraps the refusal as IOException over AddressInUseException; the retry once looked for a SocketException.
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        var drainFile = Path.Combine(Path.GetTempPath(), $"lifeline-demohost-{Guid.NewGuid():N}.sessions");

        var error = await Assert.ThrowsAnyAsync<Exception>(() => DemoHost.StartAsync(new DemoLedger(1), new DemoTraffic(TimeProvider.System, 1), drainFile, port, CancellationToken.None));

        Assert.True(DemoHost.IsAddressInUse(error), $"not recognised as the port being taken: {error}");
        Assert.False(DemoHost.IsAddressInUse(new IOException("disk full")));
        File.Delete(drainFile);
    }

    [Fact]
    public async Task NaiveClient_BeforeItsFirstConnection_CountsNoMessageAsSent()
    {
        // Nothing listens: the naive client keeps trying. Its sender ticks on the fake clock meanwhile.
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var ledger = new DemoLedger(1);
        var record = ledger.OfKind(ClientKind.Naive).Single();
        var client = new NaiveDemoClient(record, new Uri($"ws://127.0.0.1:{port}/"), new DemoTraffic(time, 1), ledger);
        using var stop = new CancellationTokenSource();
        var starting = client.StartAsync(stop.Token);
        for (var tick = 0; tick < 10; tick++)
        {
            time.Advance(DemoTraffic.Tick);
            await Task.Delay(20);
        }

        // Before, every tick counted as a message sent and lost, charged to the first incident the demo played.
        var counts = new MessageCounts[1];
        record.Up.AddTo(counts);
        Assert.Equal(0, counts[0].Sent);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => starting);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task CancelledWhileClientsComeBackAfterTheRestart_TheNewHostIsStoppedToo()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var runner = new DemoRunner(new DemoSettings(5, DemoIncident.Parse(["restart"]), 7), TimeProvider.System, line =>
        {
            if (line.Contains("a new one starts on port", StringComparison.Ordinal))
            {
                cts.CancelAfter(TimeSpan.FromMilliseconds(300)); // Ctrl-C while the clients come back to the new host
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => runner.RunAsync(cts.Token));

        // Before, the clean-up stopped the old host (already stopped) and left the new one listening.
        var port = runner.Ports!.Value.Server;
        using var probe = new TcpListener(IPAddress.Loopback, port);
        probe.Start();
    }

    [Fact]
    public async Task ClientsDoNotConnectInTime_ASetupErrorThatSaysSo_AndEverythingIsStopped()
    {
        // A bound no client can meet stands in for a machine too busy to connect 300 clients in 30 s. Before, the bound's
        // cancellation reached the CLI's last line of defence, which called it a bug in lifeline.
        var runner = new DemoRunner(new DemoSettings(5, DemoIncident.Parse(["link-drop"]), 7, ConnectBound: TimeSpan.FromTicks(1)), TimeProvider.System, _ => { });

        var error = await Assert.ThrowsAsync<DemoSetupException>(() => runner.RunAsync(CancellationToken.None));

        Assert.Contains("of 15 demo clients connected within", error.Message, StringComparison.Ordinal);
        Assert.Contains("--clients", error.Message, StringComparison.Ordinal);
        using var server = new TcpListener(IPAddress.Loopback, runner.Ports!.Value.Server);
        server.Start();
        using var proxy = new TcpListener(IPAddress.Loopback, runner.Ports!.Value.Proxy);
        proxy.Start();
    }
}
