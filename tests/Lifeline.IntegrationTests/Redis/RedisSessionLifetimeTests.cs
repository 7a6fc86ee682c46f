using Lifeline.Client;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.IntegrationTests.Sessions;
using Lifeline.Session;
using Lifeline.Session.Store;
using Lifeline.Session.Wire;

namespace Lifeline.IntegrationTests.Redis;

/// <summary>
/// How long the shared store keeps a session: a resume window from when its client went away, and not at all once it
/// ended on its node (no node brings it back).
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class RedisSessionLifetimeTests
{
    [Fact]
    public async Task ClientGoesAwayLongAfterTheLastCommit_TheStoreKeepsTheSessionAFullResumeWindowFromThen()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var prefix = $"t{Guid.NewGuid():N}:";
        await using var node = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, prefix, new ClusterLog());
        await node.WaitForFanoutAsync(); // its Redis connection is up: a first Hello would otherwise wait for it within the 1 s timeout
        await using var proxy = new TcpFaultProxy("127.0.0.1", node.Port).Start();
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/finish")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var id = client.SessionId!.Value;

        // A quiet session: nothing is committed after its start, and the node renews only sessions with a socket (every
        // third of the 60 s window, the first 20 s after the node started). The client goes away 8 s later.
        await Task.Delay(TimeSpan.FromSeconds(8));
        proxy.RefuseConnections();
        proxy.ResetAll();
        await states.NextAsync(LifelineClientState.Reconnecting);

        // Before, the keys kept the TTL of the start's commit (about 52 s left), so a resume inside the window the client
        // was promised (60 s from now) could find them gone: the node that restarts or the next node tells it SessionLost.
        await using var store = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var snapshotKey = $"{prefix}session:{{{id}}}";
        await Wait.UntilAsync(() => store.GetDatabase().KeyTimeToLive(snapshotKey) > TimeSpan.FromSeconds(56), TimeSpan.FromSeconds(15),
            "the session's keys to live a full resume window from the disconnect");
    }

    [Fact]
    public async Task StateSetDirectly_IsCommittedToTheStore_WithoutADrain()
    {
        await using var redis = await RedisServer.StartNewAsync();
        await using var node = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, $"t{Guid.NewGuid():N}:", new ClusterLog());
        await node.WaitForFanoutAsync();
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(node.Uri("/state")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var id = client.SessionId!.Value;

        await client.SendTextAsync("position 7");

        // Before, a direct State.Set reached the store only with a later snapshot (a group change, a send that updates the
        // state, a drain): after a crash, the session resumed on another node without it.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while ((await node.Sessions.Journal!.ReadAsync(id))?.State.GetValueOrDefault("last") != "position 7")
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), "the state never reached the store");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task HandlerReturnsWhileTheClientIsAway_TheResumeIsToldTheSessionIsLost_NotGivenANewHandler()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var log = new ClusterLog();
        await using var node = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, $"t{Guid.NewGuid():N}:", log);
        await node.WaitForFanoutAsync(); // its Redis connection is up: a first Hello would otherwise wait for it within the 1 s timeout
        await using var proxy = new TcpFaultProxy("127.0.0.1", node.Port).Start();
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/finish")));
        var lost = new TaskCompletionSource<SessionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.SessionLost += (_, e) => lost.TrySetResult(e);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var id = client.SessionId!.Value;
        await Wait.UntilAsync(() => Volatile.Read(ref log.HandlerStarts) == 1, TimeSpan.FromSeconds(30), "the handler to start");

        // The link goes; meanwhile the handler returns, so the session is over, and the client never gets the 1000.
        proxy.RefuseConnections();
        proxy.ResetAll();
        await states.NextAsync(LifelineClientState.Reconnecting);
        log.Finish.SetResult();

        // Before, the store kept the session's snapshot until its keys expired: the resume restored it from there and
        // ran a second handler for a session that had ended.
        await Wait.UntilAsync(() => StoreForgot(node, id), TimeSpan.FromSeconds(30), "the store to forget the ended session");
        proxy.AcceptConnections();

        // The client starts a new session (whose handler, with Finish set, returns at once: the client then stops on 1000).
        Assert.Equal(SessionLostReason.NotFound, (await lost.Task.WaitAsync(TimeSpan.FromSeconds(30))).Reason);
        await Wait.UntilAsync(() => Volatile.Read(ref log.HandlerStarts) == 2, TimeSpan.FromSeconds(30), "the new session's handler");
        Assert.Equal(0, Volatile.Read(ref log.ResumedStarts));
    }

    [Fact]
    public async Task HandlerReturnsWhileAResumeReplays_TheReplayGoesOutWhole_ThenTheClose()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var log = new ClusterLog();
        await using var node = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, $"t{Guid.NewGuid():N}:", log);
        await node.WaitForFanoutAsync(); // its Redis connection is up: a first Hello would otherwise wait for it within the 1 s timeout
        SessionId id;
        ResumeToken token;
        using (var first = await SessionBadInputTests.ConnectAsync(node.Uri("/five-then-finish")))
        {
            (id, token) = await SessionBadInputTests.HelloAsync(first);
            for (var i = 1; i <= 5; i++)
            {
                Assert.Equal(i, (await SessionBadInputTests.ReadUntilAsync(first, SessionFrameType.Data)).Sequence); // read, never acknowledged
            }

            first.Abort();
        }

        // The handler returns while the resume is attached and about to replay the five: the resume holds on until the
        // end has begun, then until the session is seen ended and its socket closing (before the fix, at once) or for
        // 3 s (an end that waits for the resume cannot end it meanwhile).
        var session = node.Sessions.Find(id)!;
        var endBegan = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        node.Sessions.EndAfterHandlerBeganForTest = () => endBegan.TrySetResult();
        node.Sessions.AfterResumeAttachForTest = async () =>
        {
            log.Finish.TrySetResult();
            await endBegan.Task.WaitAsync(TimeSpan.FromSeconds(20));
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (!(session.IsEnded && session.Carrier?.Connection.IsCloseRequested != false) && waited.Elapsed < TimeSpan.FromSeconds(3))
            {
                await Task.Delay(20);
            }
        };
        using var second = await SessionBadInputTests.ConnectAsync(node.Uri("/five-then-finish"));
        await SessionBadInputTests.SendAsync(second, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));

        // Before, the end closed the new socket at once, in the middle of the resume: a 1000 and nothing of the five.
        var resumed = await SessionBadInputTests.ReadUntilAsync(second, SessionFrameType.Resumed);
        Assert.Equal(5, resumed.Resumed.ReplayCount);
        for (var i = 1; i <= 5; i++)
        {
            Assert.Equal(i, (await SessionBadInputTests.ReadUntilAsync(second, SessionFrameType.Data)).Sequence);
        }

        var buffer = new byte[1024];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Close, (await second.ReceiveAsync(buffer, bound.Token)).MessageType);
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, second.CloseStatus);
    }

    [Fact]
    public async Task TwoResumesAtOnceOnANodeWithoutTheSession_OneHandler()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var prefix = $"t{Guid.NewGuid():N}:";
        var log = new ClusterLog();
        var first = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, prefix, log);
        // A node connects to Redis on first use, within the 1 s operation timeout of these nodes: on a loaded machine a
        // Hello sent at once could find the store "unavailable" (1013). Wait until the node's connection is up.
        await first.WaitForFanoutAsync();
        SessionId id;
        ResumeToken token;
        await using (first)
        {
            using var socket = await SessionBadInputTests.ConnectAsync(first.Uri("/finish"));
            (id, token) = await SessionBadInputTests.HelloAsync(socket);
            await Wait.UntilAsync(() => Volatile.Read(ref log.HandlerStarts) == 1, TimeSpan.FromSeconds(30), "the handler on node1");
            await first.KillAsync();
        }

        // A client that reconnected twice in quick succession: both resumes reach a node that has no copy of the session.
        // Before, each read it from the store, restored it and started a handler of its own.
        await using var second = await ClusterNode.StartAsync("node2", RedisServer.FreePort(), redis.Configuration, prefix, log);
        await second.WaitForFanoutAsync();
        using var a = await SessionBadInputTests.ConnectAsync(second.Uri("/finish"));
        using var b = await SessionBadInputTests.ConnectAsync(second.Uri("/finish"));
        var resume = SessionBadInputTests.Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0)));
        await Task.WhenAll(SessionBadInputTests.SendAsync(a, resume), SessionBadInputTests.SendAsync(b, resume));
        await Task.WhenAll(
            SessionBadInputTests.ReadUntilAsync(a, SessionFrameType.Resumed),
            SessionBadInputTests.ReadUntilAsync(b, SessionFrameType.Resumed));

        await Wait.UntilAsync(() => Volatile.Read(ref log.ResumedStarts) >= 1, TimeSpan.FromSeconds(30), "the resumed session's handler");
        Assert.Equal(1, Volatile.Read(ref log.ResumedStarts));
        Assert.Single(second.Sessions.Sessions);
    }

    /// <summary>Whether the node's store no longer has the session; a read that timed out (1 s, on a loaded machine) says "not yet".</summary>
    private static bool StoreForgot(ClusterNode node, SessionId id)
    {
        try
        {
            return node.Sessions.Journal!.ReadAsync(id).AsTask().GetAwaiter().GetResult() is null;
        }
        catch (SessionStoreUnavailableException)
        {
            return false;
        }
    }
}
