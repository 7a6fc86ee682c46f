using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Reconnect;

namespace Lifeline.IntegrationTests.Client;

/// <summary>A reconnect delay out of range (from a custom policy or a hook) is brought into range, not fatal.</summary>
public sealed class ReconnectDelayTests
{
    private sealed class FixedDelayPolicy(TimeSpan delay) : IReconnectPolicy
    {
        public TimeSpan? NextDelay(ReconnectContext context) => delay;
    }

    [Fact]
    public async Task PolicyReturnsANegativeDelay_TheClientReconnectsAtOnce()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = new LifelineClientOptions { Uri = server.Uri("/echo"), ReconnectPolicy = new FixedDelayPolicy(TimeSpan.FromMilliseconds(-5)) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // Before, Task.Delay threw ArgumentOutOfRangeException in the connection loop: the client went to Closed with
        // nothing logged, after having announced the reconnect.
        await server.CloseAllAsync(1011, "handler failed");
        Assert.Equal(TimeSpan.Zero, (await states.NextAsync(LifelineClientState.Reconnecting)).ReconnectDelay);
        await states.NextAsync(LifelineClientState.Connected);
    }

    [Fact]
    public async Task PolicyReturnsADelayBeyondWhatATimerTakes_TheClientWaitsInsteadOfClosing()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = new LifelineClientOptions { Uri = server.Uri("/echo"), ReconnectPolicy = new FixedDelayPolicy(TimeSpan.FromDays(400)) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await server.CloseAllAsync(1011, "handler failed");
        await states.NextAsync(LifelineClientState.Reconnecting);
        await Task.Delay(500); // before, the timer threw at once and the client went to Closed: give that time to show
        Assert.Equal(LifelineClientState.Reconnecting, client.State);
    }
}
