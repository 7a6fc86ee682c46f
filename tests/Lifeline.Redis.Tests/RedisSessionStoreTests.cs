using System.Diagnostics;
using Lifeline.Session;
using Lifeline.Session.Store;
using StackExchange.Redis;

namespace Lifeline.Redis.Tests;

public sealed class RedisSessionStoreTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private readonly string _prefix = $"t{Guid.NewGuid():N}:";
    private LifelineRedisConnection _nodeA = null!;
    private LifelineRedisConnection _nodeB = null!;

    public Task InitializeAsync()
    {
        _nodeA = redis.Connect(_prefix, "node-a");
        _nodeB = redis.Connect(_prefix, "node-b");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _nodeA.DisposeAsync();
        await _nodeB.DisposeAsync();
    }

    [Fact]
    public async Task SaveAsync_ThenLoadTakeRemove_RoundTrips()
    {
        var store = new RedisSessionStore(_nodeA);
        var other = new RedisSessionStore(_nodeB);
        var snapshot = Snapshots.Create(TimeSpan.FromMinutes(1));

        await store.SaveAsync(snapshot);
        var loaded = await other.TryLoadAsync(snapshot.Id);

        Assert.NotNull(loaded);
        Assert.Equal(snapshot.Id, loaded.Id);
        Assert.Equal(snapshot.TokenHash, loaded.TokenHash);
        Assert.Equal("alice", loaded.UserId);
        Assert.Equal(snapshot.ExpiresAt.ToUnixTimeMilliseconds(), loaded.ExpiresAt.ToUnixTimeMilliseconds());
        Assert.Equal(snapshot.NextOutboundSequence, loaded.NextOutboundSequence);
        Assert.Equal(snapshot.Unacknowledged.Select(m => m.Payload.ToArray()), loaded.Unacknowledged.Select(m => m.Payload.ToArray()));
        Assert.Equal(["room-1"], loaded.Groups);
        Assert.Equal("v", loaded.State["k"]);

        var taken = await other.TryTakeAsync(snapshot.Id);
        Assert.NotNull(taken);
        Assert.Null(await store.TryLoadAsync(snapshot.Id));
        Assert.Null(await store.TryTakeAsync(snapshot.Id));

        await store.SaveAsync(snapshot);
        Assert.True(await store.RemoveAsync(snapshot.Id));
        Assert.False(await store.RemoveAsync(snapshot.Id));
        Assert.Null(await other.TryLoadAsync(snapshot.Id));
    }

    [Fact]
    public async Task SaveAsync_ShortWindow_KeyHasTtlOfExpiryAndExpires()
    {
        var store = new RedisSessionStore(_nodeA);
        await using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        await store.TryLoadAsync(ResumeToken.Create().DeriveSessionId()); // connected before the clock starts
        var sinceCreated = Stopwatch.StartNew();
        var snapshot = Snapshots.Create(TimeSpan.FromSeconds(3));
        await store.SaveAsync(snapshot);

        var ttl = await raw.GetDatabase().KeyTimeToLiveAsync($"{_prefix}session:{{{snapshot.Id}}}");
        if (ttl is null)
        {
            // Only a machine stalled for the whole window may find the key already gone.
            Assert.True(sinceCreated.Elapsed >= TimeSpan.FromSeconds(3), $"the key had no TTL {sinceCreated.Elapsed.TotalMilliseconds} ms after a 3 s window began");
        }
        else
        {
            Assert.InRange(ttl.Value, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(3));
        }

        var waited = Stopwatch.StartNew();
        while (await store.TryLoadAsync(snapshot.Id) is not null)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(15), "the session did not expire within 15 s");
            await Task.Delay(50);
        }

        // The store stops returning the snapshot at its expiry by this process's clock; Redis drops the key by its own
        // clock, up to a millisecond or so later (the TTL is rounded up), so the key gets a moment to go.
        var gone = Stopwatch.StartNew();
        while (await raw.GetDatabase().KeyExistsAsync($"{_prefix}session:{{{snapshot.Id}}}"))
        {
            Assert.True(gone.Elapsed < TimeSpan.FromSeconds(5), "Redis still held the key 5 s after the session expired");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task SaveAsync_AlreadyExpired_StoresNothing()
    {
        var store = new RedisSessionStore(_nodeA);
        var snapshot = Snapshots.Create(TimeSpan.FromMilliseconds(-1));

        await store.SaveAsync(snapshot);

        Assert.Null(await store.TryLoadAsync(snapshot.Id));
    }

    [Fact]
    public async Task TryTakeAsync_TwoConcurrentTakers_ExactlyOneWins()
    {
        var storeA = new RedisSessionStore(_nodeA);
        var storeB = new RedisSessionStore(_nodeB);
        for (var round = 0; round < 50; round++)
        {
            var snapshot = Snapshots.Create(TimeSpan.FromMinutes(1));
            await storeA.SaveAsync(snapshot);

            var takes = await Task.WhenAll(
                Task.Run(async () => await storeA.TryTakeAsync(snapshot.Id)),
                Task.Run(async () => await storeB.TryTakeAsync(snapshot.Id)));

            Assert.Single(takes, t => t is not null);
        }
    }

    [Fact]
    public async Task TryAcquireAsync_Takeover_EpochIncreasesAndOldLeaseIsFencedOut()
    {
        var storeA = new RedisSessionStore(_nodeA);
        var storeB = new RedisSessionStore(_nodeB);
        var snapshot = Snapshots.Create(TimeSpan.FromMinutes(1));

        var leaseA = await storeA.TryAcquireAsync(snapshot.Id);
        await storeA.SaveAsync(leaseA, snapshot);
        await storeA.AppendAsync(leaseA, Snapshots.Messages(1, 3));
        var leaseB = await storeB.TryAcquireAsync(snapshot.Id);

        Assert.Equal("node-a", leaseA.NodeId);
        Assert.Equal(leaseA.Epoch + 1, leaseB.Epoch);
        var save = await Assert.ThrowsAsync<SessionFencedException>(async () => await storeA.SaveAsync(leaseA, snapshot));
        Assert.Equal(leaseB.Epoch, save.CurrentEpoch);
        Assert.Same(leaseA, save.Lease);
        await Assert.ThrowsAsync<SessionFencedException>(async () => await storeA.AppendAsync(leaseA, Snapshots.Messages(4, 1)));
        await Assert.ThrowsAsync<SessionFencedException>(async () => await storeA.AcknowledgeAsync(leaseA, 3, 5));
        await Assert.ThrowsAsync<SessionFencedException>(async () => await storeA.RenewAsync(leaseA));
        Assert.False(await storeA.ReleaseAsync(leaseA));

        // The new owner's writes go through, and the refused ones left nothing behind.
        Assert.Equal(5, await storeB.AppendAsync(leaseB, Snapshots.Messages(4, 1)));
        var log = await storeB.ReadLogAsync(snapshot.Id);
        Assert.NotNull(log);
        Assert.Equal(leaseB.Epoch, log.Epoch);
        Assert.Equal(0, log.OutboundAcknowledged);
        Assert.Equal([1L, 2, 3, 4], log.Unacknowledged.Select(m => m.Sequence));

        Assert.True(await storeB.ReleaseAsync(leaseB));
        var released = await Assert.ThrowsAsync<SessionFencedException>(async () => await storeB.RenewAsync(leaseB));
        Assert.Null(released.CurrentEpoch);
    }

    [Fact]
    public async Task AppendAsync_BatchesThenAcknowledge_LogKeepsOnlyUnacknowledged()
    {
        var store = new RedisSessionStore(_nodeA);
        var id = ResumeToken.Create().DeriveSessionId();
        var lease = await store.TryAcquireAsync(id);

        Assert.Equal(6, await store.AppendAsync(lease, Snapshots.Messages(1, 5)));
        Assert.Equal(6, await store.AppendAsync(lease, Snapshots.Messages(3, 3))); // a retry: nothing added
        Assert.Equal(11, await store.AppendAsync(lease, Snapshots.Messages(4, 7))); // overlaps: only 6 to 10 added
        await Assert.ThrowsAsync<ArgumentException>(async () => await store.AppendAsync(lease, Snapshots.Messages(13, 1))); // a gap

        var state = await store.AcknowledgeAsync(lease, 4, inboundDelivered: 9);
        Assert.Equal(4, state.OutboundAcknowledged);
        Assert.Equal(9, state.LastInboundDelivered);
        Assert.Equal(11, state.NextOutboundSequence);
        state = await store.AcknowledgeAsync(lease, 2, inboundDelivered: 3); // lower values are ignored
        Assert.Equal(4, state.OutboundAcknowledged);
        Assert.Equal(9, state.LastInboundDelivered);
        await Assert.ThrowsAsync<ArgumentException>(async () => await store.AcknowledgeAsync(lease, 11));

        var log = await store.ReadLogAsync(id);
        Assert.NotNull(log);
        Assert.Equal(11, log.NextOutboundSequence);
        Assert.Equal([5L, 6, 7, 8, 9, 10], log.Unacknowledged.Select(m => m.Sequence));
        Assert.Equal(new byte[] { 4, 42 }, log.Unacknowledged[0].Payload.ToArray()); // message 5 was the fifth of its batch
        Assert.True(log.Unacknowledged[0].IsText);
    }

    [Fact]
    public async Task AppendAsync_BeyondMaxLogMessages_ThrowsSessionStoreFull()
    {
        await using var small = new LifelineRedisConnection(new LifelineRedisOptions
        {
            Configuration = redis.Server.Configuration,
            KeyPrefix = _prefix,
            MaxLogMessages = 10,
        });
        var store = new RedisSessionStore(small);
        var lease = await store.TryAcquireAsync(ResumeToken.Create().DeriveSessionId());

        await store.AppendAsync(lease, Snapshots.Messages(1, 8));
        await Assert.ThrowsAsync<SessionStoreFullException>(async () => await store.AppendAsync(lease, Snapshots.Messages(9, 3)));
        await store.AcknowledgeAsync(lease, 5);
        Assert.Equal(12, await store.AppendAsync(lease, Snapshots.Messages(9, 3)));
    }

    [Fact]
    public async Task JournalCommit_FullLogWithAnAckInTheSameCommit_TheAckMakesRoomFirst()
    {
        // The server writes a client's ack with the next commit. When the log was full, that commit's message fitted only
        // once the acknowledged ones had left; the script checked the limit first and answered full, and the session was
        // lost (SessionLost 03) though its replay buffer had room.
        await using var small = new LifelineRedisConnection(new LifelineRedisOptions
        {
            Configuration = redis.Server.Configuration,
            KeyPrefix = _prefix,
            MaxLogMessages = 8,
        });
        ISessionJournal journal = new RedisSessionStore(small);
        var snapshot = Snapshots.Create(TimeSpan.FromMinutes(1), unacknowledged: 0);
        var id = snapshot.Id;
        var lease = await journal.AcquireAsync(id, TimeSpan.FromMinutes(1));
        Assert.True(await journal.CommitAsync(lease, new SessionJournalCommit { Messages = Snapshots.Messages(1, 8), Snapshot = snapshot }));

        Assert.True(await journal.CommitAsync(lease, new SessionJournalCommit { Messages = Snapshots.Messages(9, 1), OutboundAcknowledged = 1 }));
        await Assert.ThrowsAsync<SessionStoreFullException>(async () =>
            await journal.CommitAsync(lease, new SessionJournalCommit { Messages = Snapshots.Messages(10, 2), OutboundAcknowledged = 2 }));

        var read = await journal.ReadAsync(id);
        Assert.NotNull(read);
        // 9 went in; 10 and 11 did not fit, and the refused commit changed nothing.
        Assert.Equal(Enumerable.Range(2, 8).Select(i => (long)i), read.Unacknowledged.Select(m => m.Sequence));
        Assert.Equal(10, read.NextOutboundSequence);
    }

    [Fact]
    public async Task AppendAsync_FirstAppendRefusedAsFull_LeavesNoKeyWithoutATtl()
    {
        await using var small = new LifelineRedisConnection(new LifelineRedisOptions
        {
            Configuration = redis.Server.Configuration,
            KeyPrefix = _prefix,
            MaxLogMessages = 2,
        });
        var store = new RedisSessionStore(small);
        var id = ResumeToken.Create().DeriveSessionId();
        var lease = await store.TryAcquireAsync(id);

        await Assert.ThrowsAsync<SessionStoreFullException>(async () => await store.AppendAsync(lease, Snapshots.Messages(1, 3)));

        await using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        foreach (var suffix in new[] { ":log", ":cursor" })
        {
            var key = $"{_prefix}session:{{{id}}}{suffix}";
            Assert.False(await raw.GetDatabase().KeyExistsAsync(key) && await raw.GetDatabase().KeyTimeToLiveAsync(key) is null, $"{suffix} has no TTL");
        }

        Assert.Equal(3, await store.AppendAsync(lease, Snapshots.Messages(1, 2)));
    }

    [Fact]
    public async Task JournalAcquire_LateInTheWindow_TheSnapshotLivesTheNewWindowToo()
    {
        // A session committed with 2 s left (a client away for most of its window), then resumed: the acquire gives the
        // session a new window. Before, every key but the snapshot got it: a quiet session lost its snapshot 2 s later,
        // and its next resume, on any node, was answered SessionLost.
        ISessionJournal journal = new RedisSessionStore(_nodeA);
        var snapshot = Snapshots.Create(TimeSpan.FromMinutes(1));
        var first = await journal.AcquireAsync(snapshot.Id, TimeSpan.FromSeconds(2));
        Assert.True(await journal.CommitAsync(first, new SessionJournalCommit { KeepFor = TimeSpan.FromSeconds(2), Snapshot = snapshot }));

        await journal.AcquireAsync(snapshot.Id, TimeSpan.FromMinutes(2));

        await using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        foreach (var suffix in new[] { "", ":epoch", ":owner", ":cursor" })
        {
            var ttl = await raw.GetDatabase().KeyTimeToLiveAsync($"{_prefix}session:{{{snapshot.Id}}}{suffix}");
            Assert.NotNull(ttl);
            Assert.True(ttl.Value > TimeSpan.FromMinutes(1), $"{suffix}: {ttl.Value}");
        }
    }

    [Fact]
    public async Task SaveAsync_FencedWithSnapshot_SessionKeysLiveUntilSnapshotExpiry()
    {
        var store = new RedisSessionStore(_nodeA);
        var snapshot = Snapshots.Create(TimeSpan.FromMinutes(30));
        var lease = await store.TryAcquireAsync(snapshot.Id);
        await store.AppendAsync(lease, Snapshots.Messages(11, 2));
        await using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        foreach (var suffix in new[] { ":epoch", ":owner", ":log", ":cursor" })
        {
            var ttl = await raw.GetDatabase().KeyTimeToLiveAsync($"{_prefix}session:{{{snapshot.Id}}}{suffix}");
            Assert.NotNull(ttl);
            Assert.InRange(ttl.Value, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10)); // LeaseTtl
        }

        await store.SaveAsync(lease, snapshot);

        foreach (var suffix in new[] { "", ":epoch", ":owner", ":log", ":cursor" })
        {
            var ttl = await raw.GetDatabase().KeyTimeToLiveAsync($"{_prefix}session:{{{snapshot.Id}}}{suffix}");
            Assert.NotNull(ttl);
            Assert.InRange(ttl.Value, TimeSpan.FromMinutes(29), TimeSpan.FromMinutes(30));
        }
    }
}
