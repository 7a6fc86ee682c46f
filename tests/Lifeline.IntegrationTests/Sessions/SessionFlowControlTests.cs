using Lifeline.AspNetCore;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>
/// Acks travel behind Data: neither side stops reading so early that the acks its own sends wait for go unread. The
/// server's inbox holds what a client may have unacknowledged (and is bounded in bytes too); the client reads past its
/// receive bounds while its sends await acks.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class SessionFlowControlTests
{
    private static string NewDrainFile() => Path.Combine(Path.GetTempPath(), $"lifeline-flow-{Guid.NewGuid():N}.bin");

    [Fact]
    public async Task ClientConnectedButNeverAcknowledging_FullReplayBufferEndsWithSessionLostExpired()
    {
        // A client that reads but never acknowledges (a suspended tab, a stuck application): the handler's send waited for
        // room with no end, and Replay.MaxAge (protocol.md 5.8) never applied while the socket lived.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(), sessions: o =>
        {
            o.Replay.MaxMessages = 2;
            o.Replay.MaxAge = TimeSpan.FromSeconds(1);
        });
        using var socket = await SessionBadInputTests.ConnectAsync(host.Uri("/push"));
        await SessionBadInputTests.HelloAsync(socket);

        var buffer = new byte[1024];
        var data = 0;
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var received = await socket.ReceiveAsync(buffer, bound.Token);
            Assert.NotEqual(System.Net.WebSockets.WebSocketMessageType.Close, received.MessageType);
            Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new System.Buffers.ReadOnlySequence<byte>(buffer.AsMemory(0, received.Count)), int.MaxValue, out var header, out _));
            if (header.Type == SessionFrameType.Data)
            {
                data++;
                continue;
            }

            if (header.Type == SessionFrameType.SessionLost)
            {
                Assert.Equal(SessionLostReason.Expired, header.SessionLost.Reason);
                break;
            }
        }

        Assert.Equal(2, data); // the buffer's two; the third waited for room until the oldest expired
    }

    /// <summary>A started session client of the /numbered stream with the given receive capacity.</summary>
    private static async Task<LifelineClient> StreamClientAsync(SessionTestHost host, int receiveCapacity)
    {
        var client = new LifelineClient(new LifelineClientOptions
        {
            Uri = host.Uri("/numbered"),
            Session = new Lifeline.Client.SessionOptions(),
            ReceiveCapacity = receiveCapacity,
        });
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        return client;
    }

    /// <summary>
    /// Reads <paramref name="count"/> numbered messages, which must run on from <paramref name="first"/>, calling
    /// <paramref name="afterEach"/> after each; within 120 s in all, or fails saying how far it got.
    /// </summary>
    private static async Task ReadNumbersInOrderAsync(LifelineClient client, int first, int count, Func<CancellationToken, Task>? afterEach = null)
    {
        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var received = 0;
        try
        {
            for (; received < count; received++)
            {
                var result = await client.ReceiveAsync(buffer, timeout.Token);
                Assert.Equal(first + received, SessionTestHost.Number(buffer.AsMemory(0, result.Count)));
                if (afterEach is not null)
                {
                    await afterEach(timeout.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"stalled: {received} of {count} messages read in 120 s");
        }
    }

    /// <summary>
    /// A session client of the /echo endpoint sends 0..<paramref name="count"/>-1 as fast as it may while it reads the
    /// answers, which must come back in order; returns the client (its caller disposes it).
    /// </summary>
    private static async Task<LifelineClient> EchoNumbersAsync(SessionTestHost host, int count)
    {
        var client = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/echo")));
        try
        {
            await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
            var sender = Task.Run(async () =>
            {
                for (var i = 0; i < count; i++)
                {
                    await client.SendAsync(SessionTestHost.Number(i));
                }
            });
            await ReadNumbersInOrderAsync(client, first: 0, count);
            await sender.WaitAsync(TimeSpan.FromSeconds(30));
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    [Fact]
    public async Task ClientSendsFarAheadOfAnEchoWhoseReplayBufferIsSmall_EveryAnswerArrives()
    {
        // The echo's replay buffer (2,000) fills when the client's Acks for the answers lag; they travel behind the
        // client's Data. With an inbox of 1,024 the carrier stopped reading at a full inbox, the handler waited for
        // replay room, and neither moved again (about 4,500 of 50,000 answers arrived). The client never has more
        // unacknowledged than its replay buffer (10,000), which the inbox now holds.
        const int count = 50_000;
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(), sessions: o => o.Replay.MaxMessages = 2_000);
        await using var client = await EchoNumbersAsync(host, count);
    }

    [Fact]
    public async Task EchoWhoseSocketHoldsOneQueuedMessage_EveryAnswerArrivesOnceAndInOrder()
    {
        // A session's send queues its frame on the socket at once when there is room; with room for one message most
        // answers find the previous one still queued and wait for room instead, holding the session's send lock, so
        // the two ways must not reorder, drop or repeat anything.
        const int count = 5_000;
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile(), server: o => o.SendBufferMessages = 1);
        await using var client = await EchoNumbersAsync(host, count);
        Assert.Equal(1, client.Statistics.Connects); // no answer waited so long that the socket was closed as a slow consumer
    }

    [Theory]
    [InlineData(10_000)] // the default: as large as the server's replay buffer
    [InlineData(100)] // far smaller: reading on by only the client's own capacity would stop short of the acks
    public async Task ClientThatAnswersEachMessageOfAFastServer_NeverStalls(int receiveCapacity)
    {
        // The server streams faster than the application reads, so the client's receive buffer fills; the application
        // answers each message with 1 KiB, so its replay buffer (1 MiB) waits for the server's acks. Those travelled
        // behind Data the loop no longer read: the send waited for good and the application never read again. The loop
        // now reads past its bounds while a send waits, holding what it reads past them unacknowledged, so the server
        // stays within its replay buffer and its acks come through.
        const int count = 100_000;
        var log = new NumberedServerLog { ServerSendCount = count };
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile());
        await using var client = await StreamClientAsync(host, receiveCapacity);

        var answer = new byte[1024];
        await ReadNumbersInOrderAsync(client, first: 1, count, afterEach: token => client.SendAsync(answer, cancellationToken: token).AsTask());

        await Wait.UntilAsync(() => log.Received.Count == count, TimeSpan.FromSeconds(60), "the server to read every answer");
    }

    [Fact]
    public async Task ClientThatWaitsForTheAckOfEachAnswer_WhileItsReceiveBufferIsFull_GetsEveryAck()
    {
        // The server streams; the client's small receive buffer fills; the application answers each message and waits
        // for the server's ack. Nothing waits for replay room, but the ack travels behind Data the loop had stopped
        // reading, so the first wait never ended. The loop reads on while any sent message awaits an ack.
        const int answers = 10;
        var log = new NumberedServerLog { ServerSendCount = 100_000 };
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile());
        await using var client = await StreamClientAsync(host, receiveCapacity: 100);

        var buffer = new byte[64];
        await Wait.UntilAsync(() => client.Statistics.MessagesReceived >= 100, what: "the receive buffer to fill");
        for (var i = 1; i <= answers; i++)
        {
            var result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(i, SessionTestHost.Number(buffer.AsMemory(0, result.Count)));
            var acked = client.SendAndWaitAckAsync(SessionTestHost.Number(i));
            var done = await Task.WhenAny(acked, Task.Delay(30_000));
            Assert.True(done == acked, $"answer {i} not acknowledged in 30 s; received {client.Statistics.MessagesReceived}, server got {log.Received.Count}");
            Assert.True(await acked);
        }

        Assert.Equal(Enumerable.Range(1, answers), log.Received.Take(answers)); // acknowledged means the handler has them
    }

    [Fact]
    public async Task InboxAtItsByteBound_TheCarrierWaits_AndEverythingArrivesInOrderOnceTheHandlerReads()
    {
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile(), sessions: o => o.InboxMaxBytes = 1_000);
        using var socket = await SessionBadInputTests.ConnectAsync(host.Uri("/gated"));
        var (id, _) = await SessionBadInputTests.HelloAsync(socket);
        for (var i = 1; i <= 10; i++)
        {
            var payload = new byte[400];
            payload[0] = (byte)i;
            await SessionBadInputTests.SendAsync(socket, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteData(w, i, 0, false, payload)));
        }

        // Two messages (800 bytes) fill the inbox; the carrier holds the third and reads no further.
        await Wait.UntilAsync(() => host.Sessions.Find(id) is { LastEnqueued: 3 }, what: "the carrier to hand over 1..3");
        await Task.Delay(500);
        Assert.Equal(3, host.Sessions.Find(id)!.LastEnqueued);

        log.Gate.SetResult();
        await Wait.UntilAsync(() => log.GatedPayloads.Count >= 10, what: "the handler to read 1..10");
        Assert.Equal(Enumerable.Range(1, 10), log.GatedPayloads.Select(p => (int)p[0]));
    }

    [Fact]
    public void InboxOptions_DefaultToWhatAClientsReplayBufferHolds_AndRefuseZero()
    {
        var options = new LifelineSessionOptions();
        Assert.True(options.InboxCapacity >= new Lifeline.Session.ReplayBufferOptions().MaxMessages);
        Assert.True(options.InboxMaxBytes >= new Lifeline.Session.ReplayBufferOptions().MaxBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.InboxMaxBytes = 0);
    }

    [Fact]
    public async Task GroupSendWhileTheHandlerHoldsAMessage_DoesNotAcknowledgeIt_TheHandlersNextReadDoes()
    {
        // A message counts as delivered when the handler comes back for more, or answers it with a send of its own. A
        // group send from elsewhere is no answer: before, it acknowledged the message the member's handler was still
        // working on, so after a crash the client would not resend it, and the handler's answer would never come.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile());
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/hold")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await client.SendAsync(new byte[] { 7 });
        await Wait.UntilAsync(() => !log.GatedPayloads.IsEmpty, TimeSpan.FromSeconds(30), "the handler to take the message");
        Assert.Equal(1, await host.Sessions.SendToGroupAsync("held", "news").WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal("news", (await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Text);
        Assert.Equal(1, client.UnacknowledgedMessages); // the group message's frame carried no ack for it

        log.Gate.SetResult();
        await Wait.UntilAsync(() => client.UnacknowledgedMessages == 0, TimeSpan.FromSeconds(30), "the ack once the handler reads on");
    }

    [Fact]
    public async Task JoinGroupAfterTheSessionEnded_LeavesNothingInTheGroupTable()
    {
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile());
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/hold")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await Wait.UntilAsync(() => Volatile.Read(ref log.HeldSession) is not null && host.Sessions.GroupCount == 1, TimeSpan.FromSeconds(30), "the member in its group");

        host.Sessions.Lose(log.HeldSession!, SessionLostReason.NotFound, tellClient: true); // the session ends, and leaves its group
        await Wait.UntilAsync(() => host.Sessions.Sessions.Count == 0 && host.Sessions.GroupCount == 0, TimeSpan.FromSeconds(30), "the session to end");

        // Something outside the handler still holds the session and joins a group. Before, the ended session stayed in
        // the group table for good: a leak, and a member every group send to that group tried and skipped.
        log.HeldSession!.JoinGroup("late");
        Assert.Equal(0, host.Sessions.GroupCount);
    }

    [Fact]
    public async Task RepeatedAckWhileTheHandlerIsBusy_IsAnsweredWithAnAck()
    {
        // The browser client's heartbeat is an Ack frame that repeats its ack: it can neither send pings nor see ours.
        // Before, the server ignored it; a client whose message waited for a busy handler then heard nothing for 30 s
        // and took a live link for dead.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile());
        using var socket = await SessionBadInputTests.ConnectAsync(host.Uri("/gated"));
        await SessionBadInputTests.HelloAsync(socket);
        await SessionBadInputTests.SendAsync(socket, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteData(w, 1, 0, false, SessionTestHost.Number(1))));
        await SessionBadInputTests.SendAsync(socket, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteAck(w, 0)));

        var answer = await SessionBadInputTests.ReadUntilAsync(socket, SessionFrameType.Ack);
        Assert.Equal(0, answer.Ack); // the gated handler has not taken the message: nothing is acknowledged yet
    }

    [Fact]
    public async Task ServerLosesTheSessionWhileConnected_MessagesUpToItsLastReceivedAreNotReportedUnconfirmed()
    {
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile());
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/hold")));
        var lost = new TaskCompletionSource<SessionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.SessionLost += (_, e) => lost.TrySetResult(e);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // The handler takes 1 and works on it; 2 and 3 wait in its inbox. Nothing is acknowledged.
        for (byte i = 1; i <= 3; i++)
        {
            await client.SendAsync(new byte[] { i });
        }

        await Wait.UntilAsync(() => !log.GatedPayloads.IsEmpty && Volatile.Read(ref log.HeldSession) is { Inbox.Count: 2 }, TimeSpan.FromSeconds(30), "1 taken, 2 and 3 waiting");

        // The session is lost: the message the handler holds counts as handed over, so SessionLost says last received 1.
        host.Sessions.Lose(log.HeldSession!, SessionLostReason.BufferFull, tellClient: true);
        var report = await lost.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, report.ServerLastReceived);
        Assert.Equal(SequenceRange.FromBounds(2, 3), report.UnconfirmedToServer); // before, 1..3: 1 was handled
    }

    [Fact]
    public async Task SendWhileTheClientEndsALostSession_GoesOutInTheNextSession()
    {
        // The server ends the session; the client's receive loop has let go of it but not yet of the socket (held here in
        // its SessionLost log line). A send in that window found no session and went to the queue, whose writer wrote it
        // as a bare payload without session framing: the send completed, the server could not take the frame, and the
        // message was in neither session nor in the SessionLost report. Now it waits for the next session.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, NewDrainFile());
        var logger = new PausingLogger(eventId: 14); // "Session lost: ..."
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/hold")), logger);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await client.SendAsync(new byte[] { 1 });
        await Wait.UntilAsync(() => !log.GatedPayloads.IsEmpty && Volatile.Read(ref log.HeldSession) is not null, TimeSpan.FromSeconds(30), "1 taken");

        try
        {
            host.Sessions.Lose(log.HeldSession!, SessionLostReason.BufferFull, tellClient: true);
            await logger.Paused.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await client.SendAsync(new byte[] { 9 }).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        }
        finally
        {
            logger.Resume.TrySetResult();
        }

        // The next session's handler takes 9 first: /hold records the first message it reads.
        await Wait.UntilAsync(() => log.GatedPayloads.Any(p => p is [9]), TimeSpan.FromSeconds(30), "9 in the next session");
        Assert.Equal(2, client.SessionCounts.Started);
    }

    /// <summary>Holds the thread that logs the given event, once, until the test resumes it.</summary>
    private sealed class PausingLogger(int eventId) : Microsoft.Extensions.Logging.ILogger<LifelineClient>
    {
        private int _paused;

        public TaskCompletionSource Paused { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Resume { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (id.Id == eventId && Interlocked.Exchange(ref _paused, 1) == 0)
            {
                Paused.TrySetResult();
                Resume.Task.Wait(TimeSpan.FromSeconds(30));
            }
        }
    }
}
