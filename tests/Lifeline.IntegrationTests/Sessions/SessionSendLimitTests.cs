using System.Buffers;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Session;
using Lifeline.Session.Wire;

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
    public async Task SendJustUnderTheServersFrameLimit_IsSent_AndOneOverIsRefusedAtTheCall()
    {
        // The server's limit counts the whole frame; a Data header is 3 bytes here, not the worst case of 21.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(), server: o => o.MaxMessageSize = 1_000);
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await client.SendAsync(new byte[995]);
        Assert.Equal(995, (await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Data.Length);

        await Assert.ThrowsAsync<ArgumentException>(async () => await client.SendAsync(new byte[1_000]));
        Assert.Equal(LifelineClientState.Connected, client.State);
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

    [Fact]
    public async Task GroupSend_OneMemberNeverAcknowledges_TheOthersGetEverySendAndThatMemberIsLost()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(),
            sessions: o => o.Replay.MaxMessages = 5, server: o => o.SendTimeout = TimeSpan.FromSeconds(3)); // the healthy member's acks, on a loaded machine, come well within it

        // A member that completes the handshake and then reads nothing, so it never acknowledges.
        using var stalled = new ClientWebSocket();
        stalled.Options.AddSubProtocol(SessionProtocol.SubProtocol);
        await stalled.ConnectAsync(host.Uri("/group"), CancellationToken.None);
        var hello = new ArrayBufferWriter<byte>();
        SessionFrameWriter.WriteHello(hello, HelloFrame.NewSession());
        await stalled.SendAsync(hello.WrittenMemory, WebSocketMessageType.Binary, true, CancellationToken.None);
        var welcome = await stalled.ReceiveAsync(new byte[1024], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(WebSocketMessageType.Binary, welcome.MessageType);

        await using var healthy = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/group")));
        await healthy.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await Wait.UntilAsync(() => host.Sessions.Sessions.Count == 2 && host.Sessions.Sessions.All(s => s.Groups.Contains("g")), what: "both members in the group");

        // Before, the sixth send waited for the stalled member's acks for good, and every send after it with it.
        var reached = new List<int>();
        for (var i = 1; i <= 10; i++)
        {
            reached.Add(await host.Sessions.SendToGroupAsync("g", SessionTestHost.Number(i)).WaitAsync(TimeSpan.FromSeconds(30)));
        }

        for (var i = 1; i <= 10; i++)
        {
            Assert.Equal(i, SessionTestHost.Number((await Wait.ReadAsync(healthy.Messages, TimeSpan.FromSeconds(30))).Data));
        }

        Assert.Equal(Enumerable.Repeat(2, 5), reached.Take(5));
        Assert.All(reached.Skip(6), r => Assert.Equal(1, r));
        Assert.Single(host.Sessions.Sessions);
    }
}
