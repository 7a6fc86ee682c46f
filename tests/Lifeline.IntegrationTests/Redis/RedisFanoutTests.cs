using System.Buffers;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.IntegrationTests.Sessions;
using Lifeline.Session.Wire;

namespace Lifeline.IntegrationTests.Redis;

/// <summary>
/// Group sends that reach a node through Redis: one member that does not acknowledge must not hold up the node's other
/// members, and still gets its messages in order (or is lost and told) like a member of a local group send.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class RedisFanoutTests
{
    private sealed class TwoNodes : IAsyncDisposable
    {
        public RedisServer Redis { get; private init; } = null!;

        public ClusterNode A { get; private set; } = null!;

        public ClusterNode B { get; private set; } = null!;

        public ClusterLog Log { get; } = new();

        /// <summary>Node B keeps 5 unacknowledged messages (at most <paramref name="maxBytes"/>) per session and waits <paramref name="sendTimeout"/> for room.</summary>
        public static async Task<TwoNodes> StartAsync(TimeSpan sendTimeout, long maxBytes = 1024 * 1024)
        {
            var nodes = new TwoNodes { Redis = await RedisServer.StartNewAsync() };
            try
            {
                var prefix = $"t{Guid.NewGuid():N}:";
                nodes.A = await ClusterNode.StartAsync("nodeA", RedisServer.FreePort(), nodes.Redis.Configuration, prefix, nodes.Log);
                nodes.B = await ClusterNode.StartAsync("nodeB", RedisServer.FreePort(), nodes.Redis.Configuration, prefix, nodes.Log,
                    sessions: o =>
                    {
                        o.Replay.MaxMessages = 5;
                        o.Replay.MaxBytes = maxBytes;
                    },
                    server: o => o.SendTimeout = sendTimeout);
                await Task.WhenAll(nodes.A.WaitForFanoutAsync(), nodes.B.WaitForFanoutAsync());
                return nodes;
            }
            catch
            {
                await nodes.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (A is not null)
            {
                await A.KillAsync();
            }

            if (B is not null)
            {
                await B.KillAsync();
            }

            await Redis.DisposeAsync();
        }
    }

    /// <summary>On node B: a member of group "g" that completes the handshake and then reads nothing, and one that reads.</summary>
    private static async Task<(ClientWebSocket Stalled, LifelineClient Healthy)> TwoMembersOnBAsync(TwoNodes nodes)
    {
        var stalled = await SessionBadInputTests.ConnectAsync(nodes.B.Uri("/group"));
        var healthy = new LifelineClient(SessionResumeTests.SessionClient(nodes.B.Uri("/group")));
        try
        {
            await SessionBadInputTests.HelloAsync(stalled);
            await healthy.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
            await Wait.UntilAsync(() => Volatile.Read(ref nodes.Log.GroupJoins) >= 2 && nodes.B.Sessions.Sessions.Count == 2, TimeSpan.FromSeconds(15), "both members in the group");
            return (stalled, healthy);
        }
        catch
        {
            stalled.Dispose();
            await healthy.DisposeAsync();
            throw;
        }
    }

    private static async Task SendFromAAsync(TwoNodes nodes, int count)
    {
        for (var i = 1; i <= count; i++)
        {
            await nodes.A.Sessions.SendToGroupAsync("g", SessionTestHost.Number(i)).WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>A sends 1..10 to group "g" while B's healthy member reads them, each within 20 s.</summary>
    private static async Task SendTenWhileTheHealthyMemberReadsAsync(TwoNodes nodes, LifelineClient healthy)
    {
        var reading = AssertReadsAsync(healthy, 1, 10);
        await SendFromAAsync(nodes, 10);
        await reading;
    }

    private static async Task AssertReadsAsync(LifelineClient member, int from, int to)
    {
        for (var i = from; i <= to; i++)
        {
            LifelineMessage message;
            try
            {
                message = await Wait.ReadAsync(member.Messages, TimeSpan.FromSeconds(20));
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Message {i} did not arrive within 20 s.");
            }

            Assert.Equal(i, SessionTestHost.Number(message.Data));
        }
    }

    /// <summary>The raw member reads its Data frames and acknowledges each, until <paramref name="done"/> says so (30 s at most); their numbers.</summary>
    private static async Task<List<int>> ReadAndAcknowledgeAsync(ClientWebSocket member, Func<List<int>, bool> done)
    {
        var received = new List<int>();
        var buffer = new byte[64 * 1024];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (received.Count == 0 || !done(received))
        {
            var result = await member.ReceiveAsync(buffer, bound.Token);
            Assert.True(result.MessageType != WebSocketMessageType.Close, $"closed with {(int?)member.CloseStatus} {member.CloseStatusDescription}");
            Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, result.Count)), int.MaxValue, out var header, out var payload));
            if (header.Type == SessionFrameType.Data)
            {
                received.Add(SessionTestHost.Number(payload.ToArray()));
                await SessionBadInputTests.SendAsync(member, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteAck(w, header.Sequence)));
            }
        }

        return received;
    }

    [Fact]
    public async Task OneMemberDoesNotAcknowledge_TheOtherMemberOnItsNodeGetsEveryMessage_AndItGetsTheRestInOrderOnceItReads()
    {
        await using var nodes = await TwoNodes.StartAsync(sendTimeout: TimeSpan.FromSeconds(60));
        var (stalled, healthy) = await TwoMembersOnBAsync(nodes);
        using var disposeStalled = stalled;
        await using var disposeHealthy = healthy;

        // Before, B delivered the fan-out one message at a time: message 6 waited for room in the stalled member's replay
        // buffer (up to SendTimeout, 60 s here), and the healthy member's 6..10 waited behind it.
        await SendTenWhileTheHealthyMemberReadsAsync(nodes, healthy);

        // The stalled member reads and acknowledges: it gets all ten, once each and in order.
        var received = await ReadAndAcknowledgeAsync(stalled, numbers => numbers.Count == 10);

        Assert.Equal(Enumerable.Range(1, 10), received);
        Assert.Equal(2, nodes.B.Sessions.Sessions.Count);
    }

    [Fact]
    public async Task MessagesWaitingBehindAMember_WhenItLeavesTheGroup_AreNotDeliveredToIt()
    {
        await using var nodes = await TwoNodes.StartAsync(sendTimeout: TimeSpan.FromSeconds(60));
        var (stalled, healthy) = await TwoMembersOnBAsync(nodes);
        using var disposeStalled = stalled;
        await using var disposeHealthy = healthy;

        // 1..5 fill the stalled member's replay buffer, 6 waits for room (handed to it while a member), 7..9 wait behind 6.
        var reading = AssertReadsAsync(healthy, 1, 9);
        await SendFromAAsync(nodes, 9);
        await reading;

        await SessionBadInputTests.SendAsync(stalled, SessionBadInputTests.Frame(w => SessionFrameWriter.WriteData(w, 1, 0, true, "leave"u8)));
        await Wait.UntilAsync(() => Volatile.Read(ref nodes.Log.GroupLeaves) == 1, TimeSpan.FromSeconds(15), "the member to leave the group");

        // A message to every session queues behind 7..9 in the member's order, and marks the end of what it is sent.
        await nodes.A.Sessions.SendToAllAsync(SessionTestHost.Number(99)).WaitAsync(TimeSpan.FromSeconds(30));

        // Before, 7..9 still reached the member that had left "g" before their turn came.
        var received = await ReadAndAcknowledgeAsync(stalled, numbers => numbers[^1] == 99);

        Assert.Equal([1, 2, 3, 4, 5, 6, 99], received);
        await AssertReadsAsync(healthy, 99, 99);
    }

    [Fact]
    public async Task OneMemberNeverAcknowledges_ItIsLostAfterSendTimeout_AndTheFanoutGoesOn()
    {
        await using var nodes = await TwoNodes.StartAsync(sendTimeout: TimeSpan.FromSeconds(3));
        var (stalled, healthy) = await TwoMembersOnBAsync(nodes);
        using var disposeStalled = stalled;
        await using var disposeHealthy = healthy;

        await SendTenWhileTheHealthyMemberReadsAsync(nodes, healthy);
        await Wait.UntilAsync(() => nodes.B.Sessions.Sessions.Count == 1, TimeSpan.FromSeconds(30), "the stalled member's session to be lost");

        // The messages that waited behind the lost member's sixth went nowhere, and B's fan-out still delivers.
        await nodes.A.Sessions.SendToGroupAsync("g", SessionTestHost.Number(11)).WaitAsync(TimeSpan.FromSeconds(30));
        await AssertReadsAsync(healthy, 11, 11);
        Assert.False(healthy.Messages.TryRead(out _), "each message once");
    }

    [Fact]
    public async Task OneMemberDoesNotAcknowledge_AsManyMessagesWaitBehindItAsItsBufferHolds_ItIsLostAtOnce()
    {
        // SendTimeout is 60 s, but the messages waiting behind a member are bounded by count too: before, nothing bounded
        // them but time, and a member that acknowledged now and then could collect them without end.
        await using var nodes = await TwoNodes.StartAsync(sendTimeout: TimeSpan.FromSeconds(60));
        using var stalled = await SessionBadInputTests.ConnectAsync(nodes.B.Uri("/group"));
        await SessionBadInputTests.HelloAsync(stalled);
        await Wait.UntilAsync(() => Volatile.Read(ref nodes.Log.GroupJoins) == 1, TimeSpan.FromSeconds(15), "the member in the group");

        await SendFromAAsync(nodes, 12); // 1..5 fill its buffer, 6 waits for room, 7..10 wait behind 6, 11 is one too many
        var lost = await SessionBadInputTests.ReadUntilAsync(stalled, SessionFrameType.SessionLost); // within 20 s, a third of SendTimeout
        Assert.Equal(SessionLostReason.BufferFull, lost.SessionLost.Reason);
        await Wait.UntilAsync(() => nodes.B.Sessions.Sessions.Count == 0, TimeSpan.FromSeconds(30), "the stalled member's session to be gone");
    }

    [Fact]
    public async Task GroupMessageLargerThanTheMembersReplayBuffer_TheMemberIsLostAndTold_NotSkippedUnseen()
    {
        // Nodes may be configured differently: B's replay buffer holds at most 100 bytes, A publishes 200.
        await using var nodes = await TwoNodes.StartAsync(sendTimeout: TimeSpan.FromSeconds(10), maxBytes: 100);
        await using var member = new LifelineClient(SessionResumeTests.SessionClient(nodes.B.Uri("/group")));
        var lost = new TaskCompletionSource<SessionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        member.SessionLost += (_, e) => lost.TrySetResult(e);
        await member.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await Wait.UntilAsync(() => Volatile.Read(ref nodes.Log.GroupJoins) == 1, TimeSpan.FromSeconds(15), "the member in the group");
        var first = member.SessionId!.Value;

        await nodes.A.Sessions.SendToGroupAsync("g", new byte[200]).WaitAsync(TimeSpan.FromSeconds(30));

        // Before, B's send to the member threw, nobody saw it, and the member went on without the message.
        Assert.Equal(SessionLostReason.BufferFull, (await lost.Task.WaitAsync(TimeSpan.FromSeconds(30))).Reason);
        Assert.Null(nodes.B.Sessions.Find(first));
    }
}
