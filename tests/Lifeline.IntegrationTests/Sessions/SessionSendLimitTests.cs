using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Session;
using Lifeline.Session.Wire;
using Microsoft.Extensions.DependencyInjection;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>Session sends that cannot be carried are refused at the call, and never block the sends behind them.</summary>
[Collection(SerialCollection.Name)]
public sealed class SessionSendLimitTests
{
    /// <summary>A member of group "g" that completes the handshake and then reads nothing, so it never acknowledges.</summary>
    private static async Task<ClientWebSocket> ConnectStalledMemberAsync(SessionTestHost host)
    {
        var stalled = new ClientWebSocket();
        stalled.Options.AddSubProtocol(SessionProtocol.SubProtocol);
        await stalled.ConnectAsync(host.Uri("/group"), CancellationToken.None);
        await StartSessionAsync(stalled);
        return stalled;
    }

    /// <summary>Says Hello for a new session and reads the Welcome.</summary>
    private static async Task StartSessionAsync(ClientWebSocket socket)
    {
        var hello = new ArrayBufferWriter<byte>();
        SessionFrameWriter.WriteHello(hello, HelloFrame.NewSession());
        await socket.SendAsync(hello.WrittenMemory, WebSocketMessageType.Binary, true, CancellationToken.None);
        var welcome = await socket.ReceiveAsync(new byte[1024], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(WebSocketMessageType.Binary, welcome.MessageType);
    }

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
    public async Task AnswerThatCannotBeNumbered_TheMessageItAnswersIsNotCountedDelivered()
    {
        // The server's replay buffer holds one message and fails when full; the client acknowledges late and sends nothing
        // more, so the push still holds it when the handler answers the client's first message.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile(), sessions: o =>
        {
            o.Replay.MaxMessages = 1;
            o.Replay.FullMode = ReplayBufferFullMode.Fail;
        });
        var options = SessionResumeTests.SessionClient(host.Uri("/answer-into-full-replay"));
        options.Session!.Ack.MaxDelay = TimeSpan.FromMinutes(5);
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await client.SendTextAsync("question");

        // Before, the message was counted delivered before its answer was numbered: the failed answer still
        // acknowledged it, and a crash or drain before a retry lost the answer while the client, told it was handled,
        // never sent it again.
        Assert.Equal(0, await log.DeliveredAfterAFailedAnswer.Task.WaitAsync(TimeSpan.FromSeconds(30)));
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
    public async Task SendBeforeTheFirstWelcome_OverTheServersFrameLimit_IsDroppedAndCounted_TheNextOneGoes()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(), server: o => o.MaxMessageSize = 1_000);
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/echo")));

        // Queued before the client knows the server's limit: it cannot be refused at the call.
        await client.SendAsync(new byte[5_000]);
        await client.SendAsync(new byte[] { 7 });
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal([7], (await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Data.ToArray());
        // Before, only a log line told of the drop: no statistic and no metric counted it.
        Assert.Equal(1, client.Statistics.MessagesDroppedTooLarge);
        Assert.Equal(LifelineClientState.Connected, client.State);
    }

    [Fact]
    public async Task ReplayBufferFullInEndSessionMode_FramesReadBeforeTheClose_AreIgnored_AndANewSessionStarts()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile());
        var options = SessionResumeTests.SessionClient(host.Uri("/push"));
        options.Session!.Replay.MaxMessages = 2;
        options.Session.Replay.FullMode = ReplayBufferFullMode.EndSession;
        await using var client = new LifelineClient(options);
        var lost = new TaskCompletionSource<SessionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.SessionLost += (_, e) => lost.TrySetResult(e);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var first = client.SessionId;

        // The server sends every 20 ms and never acknowledges: the third message ends the session in the queue's writer.
        // While the writer tells the server, the receive loop reads what the server sent meanwhile. Before, it found no
        // session and closed the connection with 1002 (which ends the client for good), or delivered the message to
        // the application after the client had told the server the session was over.
        client.AfterWriterEndedSessionForTest = async () =>
        {
            client.AfterWriterEndedSessionForTest = null;
            await Task.Delay(300); // the server's next messages arrive meanwhile
        };
        await client.SendAsync(new byte[] { 1 });
        await client.SendAsync(new byte[] { 2 });
        await client.SendAsync(new byte[] { 3 });

        Assert.Equal(SessionLostReason.BufferFull, (await lost.Task.WaitAsync(TimeSpan.FromSeconds(30))).Reason);
        await Wait.UntilAsync(() => client.State == LifelineClientState.Connected && client.SessionId is { } id && id != first, TimeSpan.FromSeconds(30));
        Assert.NotEqual(CloseCode.ProtocolError.Value, client.LastClose?.Code.Value);
    }

    [Fact]
    public async Task ServerEndsTheSession_WhileTheQueuesWriterWaitsForRoom_OneSessionLostReport()
    {
        // The client's replay buffer is full (the server never reads, so never acknowledges), and the queue's writer waits
        // for room for a third message, holding the session. The server then ends the session: its own replay buffer
        // fills, since the client's application reads nothing and the client holds back its acks. The receive loop ends
        // the session and reports it; the writer, woken by that end, must not report it again (two events with different
        // unconfirmed ranges: an application resending those would send some twice). Before, when the writer's append
        // fell between the receive loop's end of the replay buffer and its disposal (held open here), it reported too.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile(), sessions: o =>
        {
            o.Replay.MaxMessages = 3;
            o.Replay.FullMode = ReplayBufferFullMode.EndSession;
        });
        var options = SessionResumeTests.SessionClient(host.Uri("/gated-push"));
        options.Session!.Replay.MaxMessages = 2;
        options.ReceiveCapacity = 1;
        await using var client = new LifelineClient(options);
        var reports = new ConcurrentQueue<SessionLostEventArgs>();
        client.SessionLost += (_, e) => reports.Enqueue(e);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var first = client.SessionId;

        await client.SendAsync(new byte[] { 1 }).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await client.SendAsync(new byte[] { 2 }).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        using var token = new CancellationTokenSource(); // a send with a token goes through the queue's writer
        await client.SendAsync(new byte[] { 3 }, WebSocketMessageType.Binary, token.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => client.Statistics is { MessagesSent: 2, QueuedMessages: 0 }, TimeSpan.FromSeconds(30), "the writer waiting for room for the third message");
        // The receive loop's end of the session waits, between the buffer's end and its disposal, until the writer (woken
        // by that end) has found the buffer ended and ended the session in turn.
        using var writerEnded = new ManualResetEventSlim();
        client.InsideEndSessionForTest = () =>
        {
            client.InsideEndSessionForTest = null;
            writerEnded.Wait(TimeSpan.FromSeconds(20));
        };
        client.AfterWriterEndedSessionForTest = () =>
        {
            client.AfterWriterEndedSessionForTest = null;
            writerEnded.Set();
            return Task.CompletedTask;
        };
        log.Gate.TrySetResult();

        await Wait.UntilAsync(() => writerEnded.IsSet, TimeSpan.FromSeconds(30), "the writer to end the session the receive loop was ending");
        await Wait.UntilAsync(() => client.SessionCounts.Started == 2 && client.State == LifelineClientState.Connected, TimeSpan.FromSeconds(30), "a new session");
        await Wait.UntilAsync(() => !reports.IsEmpty, TimeSpan.FromSeconds(30), "the SessionLost event");
        Assert.Equal(1, client.SessionCounts.Lost);
        Assert.Single(reports, r => r.SessionId == first);
        Assert.True(reports.Single().LostByServer);
    }

    [Fact]
    public async Task ClientEndsItsSession_AServerMessageItHadReceived_CountsAsAcknowledged()
    {
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile());
        var options = SessionResumeTests.SessionClient(host.Uri("/tracked"));
        options.Session!.Replay.MaxMessages = 2;
        options.Session.Replay.FullMode = ReplayBufferFullMode.EndSession;
        options.Session.Ack.MaxDelay = TimeSpan.FromHours(1); // no Ack frame of the client's own: only its SessionLost tells
        await using var client = new LifelineClient(options);
        var lost = new TaskCompletionSource<SessionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.SessionLost += (_, e) => lost.TrySetResult(e);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // Two messages fill the client's replay buffer (the handler never reads them); their frames acknowledge nothing.
        await client.SendAsync(new byte[] { 1 });
        await client.SendAsync(new byte[] { 2 });
        log.Gate.TrySetResult();
        Assert.Equal(1, SessionTestHost.Number((await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Data));

        // The third ends the session in the queue's writer, whose SessionLost states "last received 1". Before, the server
        // ignored that number and ended its tracked send as unacknowledged, though the client's application had it.
        await client.SendAsync(new byte[] { 3 });
        Assert.Equal(SessionLostReason.BufferFull, (await lost.Task.WaitAsync(TimeSpan.FromSeconds(30))).Reason);
        Assert.True(await log.TrackedAcknowledged.Task.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task ClientEndsItsSession_ClosesTheConnectionWithACloseFrame_ThenStartsANewSession()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile());
        var factory = host.App.Services.GetRequiredService<IMeterFactory>();
        var normalClosesSent = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "lifeline.server.closes_sent" && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    l.EnableMeasurementEvents(instrument); // this host's only: other hosts cannot add to it
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag is { Key: "close_code", Value: 1000 })
                {
                    Interlocked.Add(ref normalClosesSent, (int)value);
                }
            }
        });
        listener.Start();
        var options = SessionResumeTests.SessionClient(host.Uri("/silent"));
        options.Session!.Replay.MaxMessages = 2;
        options.Session.Replay.FullMode = ReplayBufferFullMode.EndSession;
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var first = client.SessionId;

        // The third message ends the session in the queue's writer, which tells the server (SessionLost). Before, it then
        // aborted the socket with its receive pending: a reset, which could discard the SessionLost before the server read
        // it (the server kept the session for a resume that never came). Now it closes with a Close frame, sent after it.
        await client.SendAsync(new byte[] { 1 });
        await client.SendAsync(new byte[] { 2 });
        await client.SendAsync(new byte[] { 3 });

        await Wait.UntilAsync(() => client.State == LifelineClientState.Connected && client.SessionId is { } id && id != first, TimeSpan.FromSeconds(30), "a new session");
        var close = client.LastClose!;
        Assert.Equal(CloseCause.SessionInterrupted, close.Cause);
        Assert.True(close.CloseFrameReceived, close.Description);
        Assert.Equal(CloseInitiator.Client, close.Initiator);
        Assert.Equal(CloseCode.AbnormalClosure, close.Code); // reconnects as after a lost link
        await Wait.UntilAsync(() => Volatile.Read(ref normalClosesSent) >= 1, TimeSpan.FromSeconds(30), "the server's answer to the client's Close");
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

        // A send with a token goes through the queue: it too is told at the call, rather than its message being dropped later.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<ReplayBufferFullException>(async () => await client.SendAsync(new byte[] { 4 }, WebSocketMessageType.Binary, cts.Token));
        Assert.Equal(LifelineClientState.Connected, client.State);
    }

    [Fact]
    public async Task ReplayBufferFullInFailMode_MessagesQueuedWhileDown_WaitForRoomAfterTheResume_NoneDropped()
    {
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile());
        await using var proxy = new TcpFaultProxy("127.0.0.1", host.Port).Start();
        var options = SessionResumeTests.SessionClient(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/gated"));
        options.Session!.Replay.MaxMessages = 3;
        options.Session.Replay.FullMode = ReplayBufferFullMode.Fail;
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // The gated handler reads nothing yet, so nothing is acknowledged. One message in the buffer, then the link drops
        // and three more are accepted into the queue (the buffer had room for each when it was sent).
        await client.SendAsync(new byte[] { 1 });
        proxy.RefuseConnections();
        proxy.ResetAll();
        await states.NextAsync(LifelineClientState.Reconnecting);
        for (byte i = 2; i <= 4; i++)
        {
            await client.SendAsync(new byte[] { i });
        }

        // After the resume, 2 and 3 fill the buffer. Before, the queue's writer dropped 4 with a log line; now it waits
        // for room, holding it as the message in flight.
        proxy.AcceptConnections();
        await Wait.UntilAsync(() => client.State == LifelineClientState.Connected && client.HasMessageInFlight, TimeSpan.FromSeconds(30), "the fourth message to wait for room");

        log.Gate.SetResult();
        await Wait.UntilAsync(() => log.GatedPayloads.Count >= 4, TimeSpan.FromSeconds(30), "the handler to read 1..4");
        Assert.Equal([1, 2, 3, 4], log.GatedPayloads.Select(p => (int)p[0]));
    }

    [Fact]
    public async Task GroupSend_OneMemberNeverAcknowledges_TheOthersGetEverySendAndThatMemberIsLost()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(),
            sessions: o => o.Replay.MaxMessages = 5, server: o => o.SendTimeout = TimeSpan.FromSeconds(3)); // the healthy member's acks, on a loaded machine, come well within it

        using var stalled = await ConnectStalledMemberAsync(host);

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

    [Fact]
    public async Task GroupSend_MemberFullInFailMode_ThatMemberIsLost_NotSkippedSilently()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(),
            sessions: o => { o.Replay.MaxMessages = 5; o.Replay.FullMode = ReplayBufferFullMode.Fail; });

        using var stalled = await ConnectStalledMemberAsync(host);
        await Wait.UntilAsync(() => host.Sessions.Sessions.Count == 1 && host.Sessions.Sessions.All(s => s.Groups.Contains("g")), what: "the member in the group");

        for (var i = 1; i <= 5; i++)
        {
            Assert.Equal(1, await host.Sessions.SendToGroupAsync("g", SessionTestHost.Number(i)).WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // Its buffer is full: in mode Fail the sixth cannot be numbered for it. Before, that was counted as "ended
        // meanwhile" and the member stayed, having missed the message without anybody knowing.
        Assert.Equal(0, await host.Sessions.SendToGroupAsync("g", SessionTestHost.Number(6)).WaitAsync(TimeSpan.FromSeconds(30)));
        await Wait.UntilAsync(() => host.Sessions.Sessions.Count == 0, TimeSpan.FromSeconds(30), "the full member's session to be lost");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // a client without lifeline.v1 gets plain mode on a session endpoint, and joins the group the same way
    public async Task GroupSend_OneMemberStopsReading_NoSendWaitsOnItsSocket_ItIsClosedAsSlowAndKeepsItsSession(bool stalledMemberHasASession)
    {
        // The stalled member acknowledges nothing but its replay buffer has room for everything: what fills is its socket
        // (a tiny TCP window, then the server's outbound buffer). Before, a group send then waited for room on that socket,
        // up to SendTimeout (60 s here), and every later send with it; a plain broadcast never waits. Now the member's
        // socket is closed as a slow consumer (4008) at once; its session keeps the messages for its resume.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(),
            sessions: o => o.Replay.MaxBytes = 64 * 1024 * 1024,
            server: o =>
            {
                o.SendBufferBytes = 256 * 1024;
                o.SendTimeout = TimeSpan.FromSeconds(60);
            });
        using var stalled = await ConnectStalledMemberWithATinyWindowAsync(host, stalledMemberHasASession);
        await Wait.UntilAsync(() => host.Sessions.Sessions.Count == 1 && host.Sessions.Sessions.All(s => s.Groups.Contains("g")), what: "the stalled member in the group");
        var stalledSession = host.Sessions.Sessions.Single();
        var stalledConnection = stalledSession.Connection!;

        await using var healthy = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/group")));
        await healthy.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await Wait.UntilAsync(() => host.Sessions.Sessions.Count == 2 && host.Sessions.Sessions.All(s => s.Groups.Contains("g")), what: "both members in the group");

        // 32 KiB a send, in bursts of 4 that the healthy member reads before the next, until the stalled member's window and
        // the server's outbound buffer (and whatever the kernel holds for it) are full: at most 2,000 sends, 64 MB.
        var payload = new byte[32 * 1024];
        var sent = 0;
        while (stalledConnection.ClosedWith is null && sent < 2000)
        {
            for (var j = sent + 1; j <= sent + 4; j++)
            {
                SessionTestHost.Number(j).CopyTo(payload, 0);
                await host.Sessions.SendToGroupAsync("g", payload).WaitAsync(TimeSpan.FromSeconds(20));
            }

            for (var j = sent + 1; j <= sent + 4; j++)
            {
                Assert.Equal(j, SessionTestHost.Number((await Wait.ReadAsync(healthy.Messages, TimeSpan.FromSeconds(30))).Data));
            }

            sent += 4;
        }

        // Its socket is closing; its Close frame and the end of the link each wait up to SendTimeout on that socket.
        Assert.Equal(4008, stalledConnection.ClosedWith?.Value);
        if (stalledMemberHasASession)
        {
            Assert.False(stalledSession.IsEnded); // detached, waiting for its resume with every message it missed
            Assert.Equal(sent, stalledSession.LastSentSequence);
        }
    }

    [Fact]
    public async Task GroupSend_AMembersOwnSendIsStuckOnItsFullSocket_TheGroupSendDoesNotWaitForIt()
    {
        // The stalled member's handler sends on its own and is stuck waiting for room in the full outbound buffer, holding
        // the session's send lock (up to SendTimeout, 60 s here). Before, a group send waited for that lock as long: one
        // member's socket held up the sender. Now the group send closes that socket as a slow consumer (4008), as when it
        // finds the buffer full itself; the stuck send ends, and the group's message waits in the replay buffer.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(),
            sessions: o => o.Replay.MaxBytes = 64 * 1024 * 1024,
            server: o =>
            {
                o.SendBufferBytes = 256 * 1024;
                o.SendTimeout = TimeSpan.FromSeconds(60);
            });
        using var stalled = await ConnectStalledMemberWithATinyWindowAsync(host, withSession: true, "/group-pusher");
        await Wait.UntilAsync(() => host.Sessions.Sessions.Count == 1 && host.Sessions.Sessions.All(s => s.Groups.Contains("g")), what: "the stalled member in the group");
        var stalledSession = host.Sessions.Sessions.Single();
        var stalledConnection = stalledSession.Connection!;
        await Wait.UntilAsync(() => stalledConnection.HasSendersWaitingForRoom, TimeSpan.FromSeconds(30), "the handler's own send stuck on the full outbound buffer");

        // The handler's send may get room for a moment (the kernel takes a little more) and let a group send take the lock
        // in between; so send until the socket is closed, each group send bounded well below SendTimeout.
        var groupSends = 0;
        while (stalledConnection.ClosedWith is null && groupSends < 1000)
        {
            await host.Sessions.SendToGroupAsync("g", SessionTestHost.Number(++groupSends)).WaitAsync(TimeSpan.FromSeconds(20));
        }

        Assert.Equal(4008, stalledConnection.ClosedWith?.Value);
        Assert.False(stalledSession.IsEnded); // detached, waiting for its resume with every message it missed
    }

    [Fact]
    public async Task ResumeWithABacklogLargerThanTheOutboundBuffer_GroupSendsMeanwhile_NoSlowConsumerClose_EverythingInOrder()
    {
        // The client was away while its group got 3,000 messages of 4 KiB (more than the kernel's socket buffers take); the
        // outbound buffer holds 100. Its resume's replay fills that buffer and waits for room while the client reads at
        // its own pace (a 4 KiB TCP window). Before, a group send in that time took the replay for a stuck send (or found
        // the buffer full after it) and closed the freshly resumed socket with 4008: the client resumed again, with the
        // same backlog.
        const int Backlog = 3000;
        await using var host = await StartHostWithASmallOutboundBufferAsync(TimeSpan.FromSeconds(60));
        var resumed = await ResumeWithABacklogThroughATinyWindowAsync(host, Backlog);
        using var back = resumed.Socket;
        var session = resumed.Session;
        var payload = new byte[4096];

        const int Live = 5;
        var live = Enumerable.Range(0, Live).Select(_ => host.Sessions.SendToGroupAsync("g", payload)).ToList();

        var sequences = new List<long>();
        var buffer = new byte[64 * 1024];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (sequences.Count < Backlog + Live)
        {
            var result = await back.ReceiveAsync(buffer, bound.Token);
            Assert.True(result.MessageType != WebSocketMessageType.Close, $"closed with {(int?)back.CloseStatus} {back.CloseStatusDescription} after {sequences.Count} messages");
            Assert.True(result.EndOfMessage);
            Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, result.Count)), int.MaxValue, out var header, out _));
            if (header.Type == SessionFrameType.Data)
            {
                sequences.Add(header.Sequence);
            }
        }

        Assert.Equal(Enumerable.Range(1, Backlog + Live).Select(n => (long)n), sequences);
        Assert.All(await Task.WhenAll(live).WaitAsync(TimeSpan.FromSeconds(20)), reached => Assert.Equal(1, reached));
        Assert.Null(session.Connection?.ClosedWith);
    }

    [Fact]
    public async Task GroupSendToAMemberCatchingUpSlowly_WaitsAtMostSendTimeout_ThenClosesIt4008_TheSessionStays()
    {
        // As above, but the client reads its backlog slowly (a message every 5 ms: 15 s or more for all of it, while no
        // single write waits long). A group send gives a socket catching up SendTimeout (3 s here), not the whole
        // replay: then 4008, and the session stays.
        await using var host = await StartHostWithASmallOutboundBufferAsync(TimeSpan.FromSeconds(3));
        var resumed = await ResumeWithABacklogThroughATinyWindowAsync(host, 3000);
        using var back = resumed.Socket;
        var session = resumed.Session;
        var payload = new byte[4096];
        var connection = session.Connection!;
        using var stopReading = new CancellationTokenSource();
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            while (!stopReading.IsCancellationRequested)
            {
                var result = await back.ReceiveAsync(buffer, stopReading.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                await Task.Delay(5, stopReading.Token);
            }
        });

        try
        {
            // Before, the group send waited for the whole replay, and the socket caught up with no 4008.
            Assert.Equal(1, await host.Sessions.SendToGroupAsync("g", payload).WaitAsync(TimeSpan.FromSeconds(90)));
            Assert.Equal(4008, connection.ClosedWith?.Value);
            Assert.False(session.IsEnded); // its copies wait in the replay buffer for the next resume
        }
        finally
        {
            await stopReading.CancelAsync();
            await reading.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Replay buffers of 64 MiB, outbound buffers of 100 messages.</summary>
    private static Task<SessionTestHost> StartHostWithASmallOutboundBufferAsync(TimeSpan sendTimeout) =>
        SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(),
            sessions: o => o.Replay.MaxBytes = 64 * 1024 * 1024,
            server: o =>
            {
                o.SendBufferMessages = 100;
                o.SendTimeout = sendTimeout;
            });

    /// <summary>
    /// A member of group "g" goes away while the group gets <paramref name="backlog"/> messages of 4 KiB (more than the
    /// kernel's socket buffers take), then resumes through a 4 KiB TCP window without reading: returns once the replay
    /// waits for room in the outbound buffer.
    /// </summary>
    private static async Task<(ClientWebSocket Socket, Lifeline.AspNetCore.LifelineSession Session)> ResumeWithABacklogThroughATinyWindowAsync(SessionTestHost host, int backlog)
    {
        SessionId id;
        ResumeToken token;
        using (var away = await SessionBadInputTests.ConnectAsync(host.Uri("/group")))
        {
            (id, token) = await SessionBadInputTests.HelloAsync(away);
            await Wait.UntilAsync(() => host.Sessions.Find(id)?.Groups.Contains("g") == true, what: "the member in group g");
            away.Abort();
        }

        await Wait.UntilAsync(() => host.Sessions.Find(id) is { IsConnected: false }, what: "the member to be away");
        var payload = new byte[4096];
        for (var i = 0; i < backlog; i++)
        {
            Assert.Equal(1, await host.Sessions.SendToGroupAsync("g", payload).WaitAsync(TimeSpan.FromSeconds(20)));
        }

        var back = await ConnectWithATinyWindowAsync(host, "/group");
        await SessionBadInputTests.SendAsync(back, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));
        var session = host.Sessions.Find(id)!;
        await Wait.UntilAsync(() => session.Connection is { HasSendersWaitingForRoom: true }, TimeSpan.FromSeconds(30), "the replay to wait for room");
        return (back, session);
    }

    /// <summary>A WebSocket (offering lifeline.v1 unless <paramref name="session"/> is false) whose TCP receive window is tiny (4 KiB): what the server writes backs up fast.</summary>
    private static async Task<ClientWebSocket> ConnectWithATinyWindowAsync(SessionTestHost host, string path, bool session = true)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        if (session)
        {
            socket.Options.AddSubProtocol(SessionProtocol.SubProtocol);
        }

        using var handler = new System.Net.Http.SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var tcp = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { ReceiveBufferSize = 4096, NoDelay = true };
                await tcp.ConnectAsync(context.DnsEndPoint, ct);
                return new System.Net.Sockets.NetworkStream(tcp, ownsSocket: true);
            },
        };
        using var invoker = new System.Net.Http.HttpMessageInvoker(handler, disposeHandler: false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await socket.ConnectAsync(host.Uri(path), invoker, timeout.Token);
        return socket;
    }

    /// <summary>A member of group "g" with a tiny TCP receive window that completes the session's handshake (or none, in plain mode) and then reads nothing.</summary>
    private static async Task<ClientWebSocket> ConnectStalledMemberWithATinyWindowAsync(SessionTestHost host, bool withSession, string path = "/group")
    {
        var stalled = await ConnectWithATinyWindowAsync(host, path, withSession);
        if (withSession)
        {
            await StartSessionAsync(stalled);
        }

        return stalled;
    }
}
