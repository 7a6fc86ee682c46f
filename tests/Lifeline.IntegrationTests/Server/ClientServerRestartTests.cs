using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Protocol;

namespace Lifeline.IntegrationTests.Server;

/// <summary>The whole story: a Lifeline server restarts, Lifeline clients come back on the hint, not on a long backoff.</summary>
public sealed class ClientServerRestartTests
{
    [Fact]
    public async Task HostRestartsOnTheSamePort_EveryLifelineClientReturnsOnItsHint()
    {
        const int count = 20;
        var host = await LifelineTestHost.StartAsync(port: LoopbackPorts.ForRestartableServer());
        var port = host.Port;
        var clients = Enumerable.Range(0, count).Select(_ => new LifelineClient(new LifelineClientOptions { Uri = host.Uri() })).ToArray();
        var recorders = clients.Select(c => new StateRecorder(c)).ToArray();
        await Task.WhenAll(clients.Select(c => c.StartAsync().WaitAsync(TimeSpan.FromSeconds(15))));
        await Wait.UntilAsync(() => host.Registry.Count == count);

        await host.StopAsync();
        await using var restarted = await LifelineTestHost.StartAsync(port: port);

        foreach (var recorder in recorders)
        {
            var reconnecting = await recorder.NextAsync(LifelineClientState.Reconnecting);
            Assert.Equal(CloseCode.ServiceRestart, reconnecting.Close!.Code);
            Assert.True(RetryHint.TryParse(reconnecting.Close.Reason, out var hint));
            Assert.Equal(hint, reconnecting.ReconnectDelay);
            Assert.InRange(hint, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
        }

        // Back within the 5 s window plus a margin for a busy machine.
        foreach (var recorder in recorders)
        {
            await recorder.NextAsync(LifelineClientState.Connected, TimeSpan.FromSeconds(15));
        }

        await Wait.UntilAsync(() => restarted.Registry.Count == count);
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task LifelineConnect_ShowsTheRestart()
    {
        var host = await LifelineTestHost.StartAsync(port: LoopbackPorts.ForRestartableServer());
        var port = host.Port;
        await using var cli = CliProcess.Start(string.Empty, "connect", host.Uri().ToString(), "--json", "--no-stdin");
        await cli.WaitForEventAsync("connected");

        await host.StopAsync();
        await using var restarted = await LifelineTestHost.StartAsync(port: port);
        await Wait.UntilAsync(() => cli.JsonLines.Count(l => l.GetProperty("event").GetString() == "connected") == 2,
            TimeSpan.FromSeconds(15), "the second 'connected' event");

        var closed = cli.JsonLines.First(l => l.GetProperty("event").GetString() == "closed");
        Assert.Equal(1012, closed.GetProperty("code").GetInt32());
        Assert.True(closed.GetProperty("closeFrameReceived").GetBoolean());
        Assert.True(RetryHint.TryParse(closed.GetProperty("reason").GetString(), out var hint));
        var reconnecting = cli.JsonLines.First(l => l.GetProperty("event").GetString() == "reconnecting");
        Assert.Equal((long)hint.TotalMilliseconds, reconnecting.GetProperty("delayMs").GetInt64());
    }
}
