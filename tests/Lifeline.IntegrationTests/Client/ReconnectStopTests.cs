using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Client;

/// <summary>A stop while the client decides whether to reconnect ends it without announcing a reconnect.</summary>
public sealed class ReconnectStopTests
{
    [Fact]
    public async Task StopWhileOnReconnectingRuns_NoReconnectingStateIsAnnounced()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var hookRunning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.OnReconnecting = async (_, ct) =>
        {
            hookRunning.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await server.CloseAllAsync(1011, "handler failed");
        await hookRunning.Task.WaitAsync(TimeSpan.FromSeconds(15));
        await client.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // Before, the hook's cancelled token made the client fall back to the policy's delay and announce Reconnecting
        // (with a delay, a log line and one more attempt counted) on its way to Closed.
        await states.NextAsync(LifelineClientState.Closed);
        Assert.DoesNotContain(states.Events, e => e.Current == LifelineClientState.Reconnecting);
        Assert.Equal(0, client.Statistics.ReconnectAttempts);
    }
}
