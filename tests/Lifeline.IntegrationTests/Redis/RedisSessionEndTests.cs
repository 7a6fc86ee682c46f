using Lifeline.Client;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.IntegrationTests.Sessions;
using Lifeline.Session.Wire;

namespace Lifeline.IntegrationTests.Redis;

/// <summary>A session that ended on its node stays ended in the shared store: no node brings it back.</summary>
[Collection(SerialCollection.Name)]
public sealed class RedisSessionEndTests
{
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
