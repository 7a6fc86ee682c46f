using Lifeline.Client;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.IntegrationTests.Sessions;
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
    public async Task HandlerReturnsWhileTheClientIsAway_TheResumeIsToldTheSessionIsLost_NotGivenANewHandler()
    {
        await using var redis = await RedisServer.StartNewAsync();
        var log = new ClusterLog();
        await using var node = await ClusterNode.StartAsync("node1", RedisServer.FreePort(), redis.Configuration, $"t{Guid.NewGuid():N}:", log);
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
        await Wait.UntilAsync(() => node.Sessions.Journal!.ReadAsync(id).AsTask().GetAwaiter().GetResult() is null, TimeSpan.FromSeconds(30), "the store to forget the ended session");
        proxy.AcceptConnections();

        Assert.Equal(SessionLostReason.NotFound, (await lost.Task.WaitAsync(TimeSpan.FromSeconds(30))).Reason);
        await Wait.UntilAsync(() => client.State == LifelineClientState.Connected && client.SessionId is { } next && next != id, TimeSpan.FromSeconds(30), "a new session");
        Assert.Equal(0, Volatile.Read(ref log.ResumedStarts));
    }
}
