using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Session;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>Session sends that cannot be carried are refused at the call, and never block the sends behind them.</summary>
[Collection(SerialCollection.Name)]
public sealed class SessionSendLimitTests
{
    private static string NewDrainFile() => Path.Combine(Path.GetTempPath(), $"lifeline-test-{Guid.NewGuid():N}.bin");

    [Fact]
    public async Task SendLargerThanTheReplayBuffer_IsRefusedAtTheCall_AndLaterSendsStillGoOut()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile());
        var options = SessionResumeTests.SessionClient(host.Uri("/echo"));
        options.Session!.Replay.MaxBytes = 1_000;
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var error = await Assert.ThrowsAsync<ArgumentException>(async () => await client.SendAsync(new byte[2_000]));
        Assert.Contains("MaxBytes", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => client.SendAndWaitAckAsync(new byte[2_000]));

        // Before, the big message went to the queue, failed in its writer and stayed first in line for good.
        await client.SendTextAsync("after");
        Assert.Equal("after", (await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Text);
    }

    [Fact]
    public async Task ReplayBufferFullInFailMode_TheSendThrows_NotADropInTheBackground()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile());
        var options = SessionResumeTests.SessionClient(host.Uri("/silent"));
        options.Session!.Replay.MaxMessages = 2;
        options.Session.Replay.FullMode = ReplayBufferFullMode.Fail;
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // The handler never reads, so nothing is acknowledged: two messages fill the buffer.
        await client.SendAsync(new byte[] { 1 });
        await client.SendAsync(new byte[] { 2 });

        await Assert.ThrowsAsync<ReplayBufferFullException>(async () => await client.SendAsync(new byte[] { 3 }));
        Assert.Equal(LifelineClientState.Connected, client.State);
    }
}
