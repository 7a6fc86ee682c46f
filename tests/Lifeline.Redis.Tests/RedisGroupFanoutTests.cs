using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using Lifeline.Session.Store;

namespace Lifeline.Redis.Tests;

public sealed class RedisGroupFanoutTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task PublishAsync_FromNodeA_NodeBReceivesAndNodeASkipsItsOwn()
    {
        var prefix = $"t{Guid.NewGuid():N}:";
        await using var nodeA = redis.Connect(prefix, "node-a");
        await using var nodeB = redis.Connect(prefix, "node-b");
        var fanoutA = new RedisGroupFanout(nodeA);
        var fanoutB = new RedisGroupFanout(nodeB);
        var atA = Channel.CreateUnbounded<GroupFanoutMessage>();
        var atB = Channel.CreateUnbounded<GroupFanoutMessage>();
        await using var subA = await fanoutA.SubscribeAsync((m, _) => atA.Writer.WriteAsync(m));
        await using var subB = await fanoutB.SubscribeAsync((m, _) => atB.Writer.WriteAsync(m));

        var receivers = await fanoutA.PublishAsync("room-1", Encoding.UTF8.GetBytes("hello"), isText: true);
        await fanoutA.PublishBroadcastAsync(new byte[] { 1, 2, 3 }, isText: false);
        await fanoutB.PublishAsync("room-2", Encoding.UTF8.GetBytes("from b"), isText: true);

        Assert.Equal(2, receivers); // both nodes' subscriptions got it from Redis; A's own is skipped locally
        var first = await atB.Reader.ReadAsync().AsTask().WaitAsync(Bound);
        Assert.Equal("room-1", first.Group);
        Assert.Equal("hello", Encoding.UTF8.GetString(first.Payload.Span));
        Assert.True(first.IsText);
        Assert.Equal("node-a", first.OriginNodeId);
        var second = await atB.Reader.ReadAsync().AsTask().WaitAsync(Bound);
        Assert.True(second.IsBroadcast);
        Assert.False(second.IsText);
        Assert.Equal(new byte[] { 1, 2, 3 }, second.Payload.ToArray());

        // A gets B's message and nothing of its own: B's message is the first thing A's callback sees.
        var atAFirst = await atA.Reader.ReadAsync().AsTask().WaitAsync(Bound);
        Assert.Equal("node-b", atAFirst.OriginNodeId);
        Assert.Equal("room-2", atAFirst.Group);
        Assert.False(atA.Reader.TryRead(out _));
        Assert.False(atB.Reader.TryRead(out _)); // B skipped its own "from b"
    }

    [Fact]
    public async Task SubscribeAsync_TimesOutButRedisSubscribesLater_ThatSubscriptionIsUndone()
    {
        // A node's subscribe loop tries again after a timeout. Before, a SUBSCRIBE that Redis answered after the timeout
        // left a queue that nobody read: it kept the channel subscribed and collected every fan-out message for good.
        await using var server = await RedisServer.StartNewAsync();
        var prefix = $"t{Guid.NewGuid():N}:";
        await using var node = new LifelineRedisConnection(new LifelineRedisOptions { Configuration = server.Configuration, KeyPrefix = prefix, OperationTimeout = TimeSpan.FromSeconds(1) });
        var fanout = new RedisGroupFanout(node);
        await fanout.PublishBroadcastAsync(new byte[] { 1 }, isText: false); // connected before the pause

        await server.PauseAsync();
        try
        {
            await Assert.ThrowsAsync<SessionStoreUnavailableException>(() => fanout.SubscribeAsync((_, _) => ValueTask.CompletedTask));
        }
        finally
        {
            await server.ResumeAsync();
        }

        // Redis answers the SUBSCRIBE that waited. Commands on one connection run in order, so by the time this second
        // subscription is confirmed the first one is too; once the second is disposed nothing may hold the channel.
        var second = await SubscribeWithRetriesAsync(fanout); // the first tries may still meet the reconnect after the pause
        await second.DisposeAsync();
        await using var observer = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(server.Configuration);
        var channel = StackExchange.Redis.RedisChannel.Literal(node.Options.FanoutChannel);
        var redisServer = observer.GetServer(observer.GetEndPoints()[0]);
        var bound = Stopwatch.StartNew();
        long subscribers;
        while ((subscribers = await redisServer.SubscriptionSubscriberCountAsync(channel)) != 0 && bound.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(50);
        }

        Assert.True(subscribers == 0, $"the channel still has {subscribers} subscriber(s) after 15 s: the late subscription was left in place");
    }

    private static async Task<IAsyncDisposable> SubscribeWithRetriesAsync(RedisGroupFanout fanout)
    {
        var bound = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await fanout.SubscribeAsync((_, _) => ValueTask.CompletedTask);
            }
            catch (SessionStoreUnavailableException) when (bound.Elapsed < TimeSpan.FromSeconds(20))
            {
                await Task.Delay(200);
            }
        }
    }

    [Fact]
    public async Task SubscribeAsync_CallbackThrows_SubscriptionGoesOn()
    {
        var prefix = $"t{Guid.NewGuid():N}:";
        await using var nodeA = redis.Connect(prefix, "node-a");
        await using var nodeB = redis.Connect(prefix, "node-b");
        var received = Channel.CreateUnbounded<string>();
        await using var sub = await new RedisGroupFanout(nodeB).SubscribeAsync(async (m, _) =>
        {
            await received.Writer.WriteAsync(m.Group!);
            if (m.Group == "bad")
            {
                throw new InvalidOperationException("application failure");
            }
        });
        var fanoutA = new RedisGroupFanout(nodeA);

        await fanoutA.PublishAsync("bad", new byte[] { 1 }, isText: false);
        await fanoutA.PublishAsync("good", new byte[] { 2 }, isText: false);

        Assert.Equal("bad", await received.Reader.ReadAsync().AsTask().WaitAsync(Bound));
        Assert.Equal("good", await received.Reader.ReadAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task PublishAsync_ManyAwaitedInTurnFromOneNode_ArriveInPublishOrder()
    {
        var prefix = $"t{Guid.NewGuid():N}:";
        await using var nodeA = redis.Connect(prefix, "node-a");
        await using var nodeB = redis.Connect(prefix, "node-b");
        var received = Channel.CreateUnbounded<int>();
        await using var sub = await new RedisGroupFanout(nodeB).SubscribeAsync(async (m, _) =>
        {
            await Task.Yield();
            await received.Writer.WriteAsync(m.Payload.Span[0] | (m.Payload.Span[1] << 8));
        });
        var fanoutA = new RedisGroupFanout(nodeA);

        for (var i = 0; i < 300; i++)
        {
            await fanoutA.PublishAsync("room", new[] { (byte)i, (byte)(i >> 8) }, isText: false);
        }

        for (var i = 0; i < 300; i++)
        {
            Assert.Equal(i, await received.Reader.ReadAsync().AsTask().WaitAsync(Bound));
        }
    }
}
