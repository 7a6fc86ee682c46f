using Lifeline.Client;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.IntegrationTests.Sessions;
using Lifeline.Redis;
using Lifeline.Session;
using Lifeline.Session.Store;
using Lifeline.Session.Wire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Lifeline.IntegrationTests.Redis;

/// <summary>
/// A resume on the node that runs the session takes it over in the store in two steps: a new epoch first, then the new
/// lease handed to the session's writer. A commit of the writer between the two is refused by the store.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class RedisTakeoverRaceTests
{
    [Fact]
    public async Task WriterCommitsBetweenTheResumesAcquireAndItsRenewal_TheSessionGoesOn_NoSecondHandler_NothingLost()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var log = new ClusterLog();
        var started = await StartNodeWithAHeldAcquireAsync(redis, log);
        await using var node = started.Node;
        var journal = started.Journal;
        await using var proxy = new TcpFaultProxy("127.0.0.1", node.Port).Start();
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/group")));
        var received = new List<string>();
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await states.NextAsync(LifelineClientState.Connected);
        var reading = Task.Run(async () =>
        {
            await foreach (var message in client.ReadAllAsync(CancellationToken.None))
            {
                lock (received)
                {
                    received.Add(message.Text);
                }
            }
        });
        await Wait.UntilAsync(() => Volatile.Read(ref log.GroupJoins) == 1, TimeSpan.FromSeconds(30), "the handler to join the group");

        // The link drops; the client's resume reaches the same node, which still runs the session. Its acquire is held
        // once the store has taken the new epoch, and meanwhile a group send makes the writer commit with the old lease.
        journal.HoldNextAcquire();
        Task<int> groupSend;
        try
        {
            proxy.ResetAll();
            await journal.Acquired.Task.WaitAsync(TimeSpan.FromSeconds(30));
            groupSend = node.Sessions.SendToGroupAsync("g", "while resuming");
            await Wait.UntilAsync(() => Volatile.Read(ref journal.RefusedCommits) >= 1, TimeSpan.FromSeconds(30), "the writer's commit with the old lease to be refused");
        }
        finally
        {
            journal.ReleaseAcquire();
        }

        // Before, the writer read the refusal as another node's takeover and ended the session: the resume then restored a
        // second copy from the store, started a second handler, and the group send's message was lost.
        await states.NextAsync(LifelineClientState.Reconnecting);
        var resumed = await states.NextAsync(LifelineClientState.Connected, TimeSpan.FromSeconds(30));
        Assert.True(resumed.SessionResumed);
        var reached = await groupSend.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, Volatile.Read(ref log.GroupJoins)); // the handler did not start again
        Assert.Equal(1, reached);
        await Wait.UntilAsync(() => Count(received, "while resuming") >= 1, TimeSpan.FromSeconds(30), "the group send's message");
        Assert.Equal(1, node.Sessions.Count);
        Assert.Equal((1L, 1L, 0L), client.SessionCounts);

        // The session still commits with the renewed lease: a second message goes through too, once.
        Assert.Equal(1, await node.Sessions.SendToGroupAsync("g", "after").WaitAsync(TimeSpan.FromSeconds(30)));
        await Wait.UntilAsync(() => Count(received, "after") == 1, TimeSpan.FromSeconds(30), "the message after the resume");
        Assert.Equal(1, Count(received, "while resuming"));
        await client.DisposeAsync();
        await reading.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task ResumeBackOnANodeWhoseOldCopyIsFenced_TheOldHandlerReturnsLate_TheRestoredCopyStaysInItsGroup()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var prefix = $"t{Guid.NewGuid():N}:";
        var log = new ClusterLog();
        await using var a = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, prefix, log);
        await using var b = await ClusterNode.StartAsync("node2", RedisServer.FreePort(), redis.Configuration, prefix, log);
        await a.WaitForFanoutAsync();
        await b.WaitForFanoutAsync();

        // The session starts on node1 and joins "g"; the client moves to node2, then back to node1. node1 still holds its
        // first copy: the resume fences it out (node2 served the session since) and restores a new copy from the store.
        SessionId id;
        ResumeToken token;
        using (var first = await SessionBadInputTests.ConnectAsync(a.Uri("/group-late-exit")))
        {
            (id, token) = await SessionBadInputTests.HelloAsync(first);
            await Wait.UntilAsync(() => a.Sessions.Find(id)?.Groups.Contains("g") == true, TimeSpan.FromSeconds(30), "the session to join g on node1");
            first.Abort();
        }

        var resume = SessionBadInputTests.Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0)));
        using (var second = await SessionBadInputTests.ConnectAsync(b.Uri("/group-late-exit")))
        {
            await SessionBadInputTests.SendAsync(second, resume);
            await SessionBadInputTests.ReadUntilAsync(second, SessionFrameType.Resumed);
            second.Abort();
        }

        using var third = await SessionBadInputTests.ConnectAsync(a.Uri("/group-late-exit"));
        await SessionBadInputTests.SendAsync(third, resume);
        await SessionBadInputTests.ReadUntilAsync(third, SessionFrameType.Resumed);

        // The fenced copy's handler returns 2 s after its session ended, after the new copy joined "g" under the same id.
        // Before, its end removed the group entry by id: the restored copy's, so no group send reached it again.
        await Wait.UntilAsync(() => log.LateExits.Contains("node1"), TimeSpan.FromSeconds(30), "the fenced copy's handler on node1 to return");
        Assert.Equal(1, await a.Sessions.SendToGroupAsync("g", "after the late exit").WaitAsync(TimeSpan.FromSeconds(30)));
        await SessionBadInputTests.ReadUntilAsync(third, SessionFrameType.Data);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task HandlerReturnsWhileAResumeOnItsNodeTakesItOver_TheResumeIsToldTheSessionIsLost_NoSecondHandler(bool storeFailsTheRemoval)
    {
        await using var redis = await RedisServer.StartNewAsync();
        var log = new ClusterLog();
        var started = await StartNodeWithAHeldAcquireAsync(redis, log);
        await using var node = started.Node;
        var journal = started.Journal;
        SessionId id;
        ResumeToken token;
        using (var first = await SessionBadInputTests.ConnectAsync(node.Uri("/finish")))
        {
            (id, token) = await SessionBadInputTests.HelloAsync(first);
            await Wait.UntilAsync(() => Volatile.Read(ref log.HandlerStarts) == 1, TimeSpan.FromSeconds(30), "the handler to start");
            first.Abort();
        }

        await Wait.UntilAsync(() => node.Sessions.Find(id) is { IsConnected: false }, TimeSpan.FromSeconds(30), "the session to be detached");

        // The resume takes the session over (a new epoch) while its handler returns; the session's removal from the store
        // then carries the old epoch, which the store refuses.
        journal.HoldNextAcquire();
        journal.FailEnds = storeFailsTheRemoval;
        using var back = await SessionBadInputTests.ConnectAsync(node.Uri("/finish"));
        try
        {
            await SessionBadInputTests.SendAsync(back, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));
            await journal.Acquired.Task.WaitAsync(TimeSpan.FromSeconds(30));
            log.Finish.SetResult();
            await Wait.UntilAsync(() => node.Sessions.Find(id) is null, TimeSpan.FromSeconds(30), "the handler's return to end the session");
        }
        finally
        {
            journal.ReleaseAcquire();
        }

        // Before, the resume found the copy ended, read the session from the store (still there) and restored it with a
        // second handler for a session whose handler had returned. With a store that then failed the removal, it closed
        // with 1013, and the client's retry restored the session.
        var lost = await SessionBadInputTests.ReadUntilAsync(back, SessionFrameType.SessionLost);
        Assert.Equal(SessionLostReason.NotFound, lost.SessionLost.Reason);
        Assert.Equal(0, Volatile.Read(ref log.ResumedStarts));
        if (!storeFailsTheRemoval)
        {
            Assert.Null(await node.Sessions.Journal!.ReadAsync(id)); // gone from the store
        }
    }

    [Fact]
    public async Task HelloWhileTheStoreIsUnavailable_Closes1013WithARetryHint()
    {
        // Every other 1013 the server sends carries a retry hint (protocol.md: "reconnect after the hint"); this one
        // carried none, so every client of a node whose store blipped came back at its own backoff.
        await using var redis = await RedisServer.StartNewAsync();
        var log = new ClusterLog();
        HeldAcquireJournal? journal = null;
        await using var node = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, $"t{Guid.NewGuid():N}:", log,
            services: s =>
            {
                s.RemoveAll<ISessionJournal>();
                s.AddSingleton<ISessionJournal>(sp => journal = new HeldAcquireJournal(sp.GetRequiredService<RedisSessionStore>()));
            });
        _ = node.Sessions.Journal;
        journal!.FailAcquires = true;

        using var socket = await SessionBadInputTests.ConnectAsync(node.Uri("/group"));
        await SessionBadInputTests.SendAsync(socket, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var buffer = new byte[1024];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while ((await socket.ReceiveAsync(buffer, timeout.Token)).MessageType != System.Net.WebSockets.WebSocketMessageType.Close)
        {
        }

        Assert.Equal(1013, (int?)socket.CloseStatus);
        Assert.True(Lifeline.Protocol.RetryHint.TryParse(socket.CloseStatusDescription, out var hint), socket.CloseStatusDescription);
        Assert.True(hint > TimeSpan.Zero);
    }

    [Fact]
    public async Task HandlerFailsBecauseTheStoreStaysAway_Closes1013WithARetryHint()
    {
        // A send the store does not confirm within StoreWriteTimeout throws SessionStoreUnavailableException; a handler
        // that lets it escape ended the socket with 1011 "internal error", as for a bug of its own. It is the store being
        // away for now: 1013 with a hint, like a Hello that finds it away.
        await using var redis = await RedisServer.StartNewAsync();
        var started = await StartNodeWithAHeldAcquireAsync(redis, new ClusterLog(), o => o.StoreWriteTimeout = TimeSpan.FromSeconds(1));
        await using var node = started.Node;
        var journal = started.Journal;
        using var socket = await SessionBadInputTests.ConnectAsync(node.Uri("/echo-uncaught"));
        await SessionBadInputTests.HelloAsync(socket);

        journal.CommitGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await SessionBadInputTests.SendAsync(socket, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteData(w, 1, 0, true, "echo me"u8)));
            var buffer = new byte[1024];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while ((await socket.ReceiveAsync(buffer, timeout.Token)).MessageType != System.Net.WebSockets.WebSocketMessageType.Close)
            {
            }

            Assert.Equal(1013, (int?)socket.CloseStatus);
            Assert.True(Lifeline.Protocol.RetryHint.TryParse(socket.CloseStatusDescription, out var hint), socket.CloseStatusDescription);
            Assert.True(hint > TimeSpan.Zero);
        }
        finally
        {
            journal.CommitGate.TrySetResult();
        }
    }

    [Fact]
    public async Task HandlerReturnsWhileItsLastSendIsBeingStored_TheClientGetsItBeforeThe1000()
    {
        // With a shared store a send goes on the wire after its commit. A handler that returned right after a send it did
        // not wait for ended the session at once: the send was failed (or its commit outran by the close), and the client
        // got 1000 without it. The session's end now waits, at most StoreWriteTimeout, for what is being stored.
        await using var redis = await RedisServer.StartNewAsync();
        var log = new ClusterLog();
        var started = await StartNodeWithAHeldAcquireAsync(redis, log);
        await using var node = started.Node;
        var journal = started.Journal;
        using var socket = await SessionBadInputTests.ConnectAsync(node.Uri("/send-then-return"));
        var (id, _) = await SessionBadInputTests.HelloAsync(socket);
        var session = node.Sessions.Find(id)!;

        journal.CommitGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = journal.CommitGate;
        await SessionBadInputTests.SendAsync(socket, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteData(w, 1, 0, true, "bye"u8)));
        await Wait.UntilAsync(() => Volatile.Read(ref log.HandlerReturns) == 1, TimeSpan.FromSeconds(30), "the handler to return");
        try
        {
            // Before, the session ended here at once (and its send was lost); now its end waits for the commit held here.
            await Wait.UntilAsync(() => session.IsEnded, TimeSpan.FromSeconds(2));
        }
        catch (TimeoutException)
        {
        }

        journal.CommitGate = null;
        gate.TrySetResult();

        var data = new List<string>();
        var buffer = new byte[1024];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var received = await socket.ReceiveAsync(buffer, timeout.Token);
            if (received.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
            {
                break;
            }

            Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new System.Buffers.ReadOnlySequence<byte>(buffer.AsMemory(0, received.Count)), int.MaxValue, out var header, out var payload));
            if (header.Type == SessionFrameType.Data)
            {
                data.Add(System.Text.Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(payload)));
            }
        }

        Assert.Equal(1000, (int?)socket.CloseStatus);
        Assert.Equal(["last words"], data);
    }

    [Fact]
    public async Task GroupSend_OneLocalMembersStoreWriteTimesOut_TheSendStillReachesTheOtherNodes()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var prefix = $"t{Guid.NewGuid():N}:";
        var log = new ClusterLog();
        HeldAcquireJournal? journal = null;
        await using var a = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, prefix, log,
            sessions: o => o.StoreWriteTimeout = TimeSpan.FromSeconds(1),
            services: s =>
            {
                s.RemoveAll<ISessionJournal>();
                s.AddSingleton<ISessionJournal>(sp => journal = new HeldAcquireJournal(sp.GetRequiredService<RedisSessionStore>()));
            });
        await using var b = await ClusterNode.StartAsync("node2", RedisServer.FreePort(), redis.Configuration, prefix, log);
        await a.WaitForFanoutAsync();
        await b.WaitForFanoutAsync();
        _ = a.Sessions.Journal;
        using var onA = await SessionBadInputTests.ConnectAsync(a.Uri("/group"));
        using var onB = await SessionBadInputTests.ConnectAsync(b.Uri("/group"));
        await SessionBadInputTests.HelloAsync(onA);
        await SessionBadInputTests.HelloAsync(onB);
        await Wait.UntilAsync(() => Volatile.Read(ref log.GroupJoins) == 2, TimeSpan.FromSeconds(30), "both sessions to join g");

        // node1's store stops answering its commits: its member's copy cannot be confirmed within StoreWriteTimeout.
        journal!.CommitGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            // Before, that member's SessionStoreUnavailableException failed the whole group send, and the publish to the
            // other nodes (node2's member) never ran.
            Assert.Equal(1, await a.Sessions.SendToGroupAsync("g", "to everyone").WaitAsync(TimeSpan.FromSeconds(30)));
            var data = await SessionBadInputTests.ReadUntilAsync(onB, SessionFrameType.Data);
            Assert.Equal(SessionFrameType.Data, data.Type);
        }
        finally
        {
            journal.CommitGate.TrySetResult();
        }
    }

    [Fact]
    public async Task MoreSendsQueuedThanOneCommitTakes_TheMessageTheyAnswerIsRecordedDeliveredOnlyWithItsAnswer()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var log = new ClusterLog();
        var started = await StartNodeWithAHeldAcquireAsync(redis, log);
        await using var node = started.Node;
        var journal = started.Journal;
        using var socket = await SessionBadInputTests.ConnectAsync(node.Uri("/pushes-then-answer"));
        var (id, _) = await SessionBadInputTests.HelloAsync(socket);
        var session = node.Sessions.Find(id)!;

        // The store holds every commit: the writer waits in one with a single push, while the 300 pushes and the answer to
        // the next message are queued behind it. Released, it commits them 256 at most at a time.
        journal.RecordCommits = true;
        journal.CommitGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await SessionBadInputTests.SendAsync(socket, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteData(w, 1, 0, true, "one"u8)));
        await Wait.UntilAsync(() => journal.Commits.Any(c => c.Messages.Contains("pushed")), TimeSpan.FromSeconds(30), "the single push's commit");
        await SessionBadInputTests.SendAsync(socket, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteData(w, 2, 0, true, "question"u8)));
        await Wait.UntilAsync(() => session.Replay.Count >= 302 && session.Inbound.LastDelivered >= 2, TimeSpan.FromSeconds(30),
            "the 300 pushes and the answer to be queued (the answer's enqueue marks the question delivered)");
        var gate = journal.CommitGate;
        journal.CommitGate = null;
        gate.TrySetResult();
        await Wait.UntilAsync(() => journal.Commits.Any(c => c.Messages.Contains("answer")), TimeSpan.FromSeconds(30), "the answer's commit");

        // Before, a batch cut at 256 recorded the question as delivered while its answer waited for the next batch: a
        // crash between the two lost the answer, and the client had dropped the question.
        var answered = false;
        foreach (var (inbound, messages) in journal.Commits)
        {
            answered |= messages.Contains("answer");
            Assert.True(answered || inbound is null or < 2, $"inbound {inbound} recorded before the answer was stored");
        }

        Assert.True(journal.Commits.Count(c => c.Messages.Count > 0) >= 3, "the 301 sends went in more than one commit");
    }

    /// <summary>One node whose store is wrapped in a <see cref="HeldAcquireJournal"/>, its Redis connection up.</summary>
    private static async Task<(ClusterNode Node, HeldAcquireJournal Journal)> StartNodeWithAHeldAcquireAsync(RedisServer redis, ClusterLog log,
        Action<Lifeline.AspNetCore.LifelineSessionOptions>? sessions = null)
    {
        HeldAcquireJournal? journal = null;
        var node = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, $"t{Guid.NewGuid():N}:", log, sessions,
            services: s =>
            {
                s.RemoveAll<ISessionJournal>();
                s.AddSingleton<ISessionJournal>(sp => journal = new HeldAcquireJournal(sp.GetRequiredService<RedisSessionStore>()));
            });
        await node.WaitForFanoutAsync(); // its Redis connection is up: a first Hello would otherwise wait for it within the 1 s timeout
        _ = node.Sessions.Journal; // resolves the store, and so the wrapper
        return (node, journal!);
    }

    private static int Count(List<string> received, string text)
    {
        lock (received)
        {
            return received.Count(r => r == text);
        }
    }

    /// <summary>The node's Redis store, with the next acquire held once the store has taken the new epoch, and the commits it refused counted.</summary>
    private sealed class HeldAcquireJournal(ISessionJournal inner) : ISessionJournal
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _armed;

        public int RefusedCommits;

        public TaskCompletionSource Acquired { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void HoldNextAcquire() => Volatile.Write(ref _armed, 1);

        public void ReleaseAcquire() => _released.TrySetResult();

        /// <summary>Every acquire fails as a store that timed out does.</summary>
        public bool FailAcquires { get; set; }

        public async ValueTask<SessionJournalLease> AcquireAsync(SessionId id, TimeSpan keepFor, CancellationToken cancellationToken = default)
        {
            if (FailAcquires)
            {
                throw new SessionStoreUnavailableException("the store timed out (test)");
            }

            var lease = await inner.AcquireAsync(id, keepFor, cancellationToken);
            if (Interlocked.Exchange(ref _armed, 0) == 1)
            {
                Acquired.TrySetResult();
                await _released.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            }

            return lease;
        }

        public bool RecordCommits { get; set; }

        /// <summary>With <see cref="RecordCommits"/>: each commit's inbound cursor and its messages' text, in order.</summary>
        public System.Collections.Concurrent.ConcurrentQueue<(long? Inbound, List<string> Messages)> Commits { get; } = new();

        /// <summary>Set: every commit waits for it (a store that has stopped answering), then goes on.</summary>
        public TaskCompletionSource? CommitGate { get; set; }

        public async ValueTask<bool> CommitAsync(SessionJournalLease lease, SessionJournalCommit commit, CancellationToken cancellationToken = default)
        {
            if (RecordCommits)
            {
                Commits.Enqueue((commit.InboundDelivered, [.. commit.Messages.Select(m => System.Text.Encoding.UTF8.GetString(m.Payload.Span))]));
            }

            if (CommitGate is { } gate)
            {
                await gate.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            }

            var committed = await inner.CommitAsync(lease, commit, cancellationToken);
            if (!committed)
            {
                Interlocked.Increment(ref RefusedCommits);
            }

            return committed;
        }

        public ValueTask<SessionSnapshot?> ReadAsync(SessionId id, CancellationToken cancellationToken = default) => inner.ReadAsync(id, cancellationToken);

        public ValueTask ReleaseAsync(SessionJournalLease lease, CancellationToken cancellationToken = default) => inner.ReleaseAsync(lease, cancellationToken);

        /// <summary>Every removal fails as a store that timed out does.</summary>
        public bool FailEnds { get; set; }

        public ValueTask EndAsync(SessionJournalLease lease, CancellationToken cancellationToken = default) =>
            FailEnds ? ValueTask.FromException(new SessionStoreUnavailableException("the store timed out (test)")) : inner.EndAsync(lease, cancellationToken);
    }
}
