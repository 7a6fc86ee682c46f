using System.Diagnostics;
using System.Diagnostics.Metrics;
using Lifeline.Session;
using Lifeline.Session.Store;

namespace Lifeline.Redis.Tests;

public sealed class RedisOutageTests
{
    [Fact]
    public async Task Operations_RedisStoppedThenRestarted_FailWithinTimeoutThenRecover()
    {
        await using var server = await RedisServer.StartNewAsync();
        var timeout = TimeSpan.FromMilliseconds(500);
        await using var connection = new LifelineRedisConnection(new LifelineRedisOptions
        {
            Configuration = server.Configuration,
            KeyPrefix = $"t{Guid.NewGuid():N}:",
            OperationTimeout = timeout,
            ConnectTimeout = TimeSpan.FromSeconds(2),
        });
        var store = new RedisSessionStore(connection);
        var fanout = new RedisGroupFanout(connection);
        long errors = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Lifeline" && instrument.Name == "lifeline.redis.errors")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref errors, value));
        listener.Start();

        var before = Snapshots.Create(TimeSpan.FromMinutes(5));
        await SaveWhenReachableAsync(store, before); // the first connect may take longer than one operation's bound
        Assert.True(connection.IsConnected);
        var errorsWhileUp = Interlocked.Read(ref errors);

        await server.StopAsync();
        var down = Stopwatch.StartNew();
        var failures = 0;
        var fastest = TimeSpan.MaxValue;
        while (down.Elapsed < TimeSpan.FromSeconds(3) || failures < 2) // a slow failure must not end the loop at one
        {
            var started = Stopwatch.StartNew();
            var e = await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.TryLoadAsync(before.Id));
            Assert.True(started.Elapsed < timeout + TimeSpan.FromSeconds(5), $"a failure took {started.Elapsed}, more than the timeout {timeout} plus 5 s");
            fastest = started.Elapsed < fastest ? started.Elapsed : fastest;
            Assert.Equal("session.load", e.Operation);
            failures++;
        }

        // Without the operation timeout a failure waits for the client library's own 5 s: a loaded machine may slow one
        // failure down, not every one of them.
        Assert.True(fastest < timeout + TimeSpan.FromSeconds(2), $"the fastest of {failures} failures took {fastest}: the {timeout} timeout was not applied");

        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.SaveAsync(Snapshots.Create(TimeSpan.FromMinutes(1))));
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.TryAcquireAsync(before.Id));
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await fanout.PublishAsync("room", new byte[] { 1 }, isText: false));
        Assert.True(Interlocked.Read(ref errors) - errorsWhileUp >= failures + 3, $"lifeline.redis.errors counted {errors - errorsWhileUp}, expected at least {failures + 3}");

        // Back up (empty: no persistence); the same connection recovers by itself.
        await server.StartAsync();
        var after = Snapshots.Create(TimeSpan.FromMinutes(5));
        await SaveWhenReachableAsync(store, after);

        Assert.NotNull(await store.TryLoadAsync(after.Id));
        Assert.Null(await store.TryLoadAsync(before.Id)); // it was in the stopped server's memory only
        var lease = await store.TryAcquireAsync(ResumeToken.Create().DeriveSessionId());
        Assert.Equal(1, lease.Epoch);
        Assert.True(connection.IsConnected);
    }

    [Fact]
    public async Task Operations_RedisOutOfMemory_FailAsUnavailableThenRecover()
    {
        // A full Redis with noeviction (as docs/redis.md advises) answers writes with OOM. That is the store being
        // unavailable for now (a Hello then gets 1013 with a hint), not a failure of the server (1011).
        await using var server = await RedisServer.StartNewAsync();
        await using var connection = new LifelineRedisConnection(new LifelineRedisOptions
        {
            Configuration = server.Configuration,
            KeyPrefix = $"t{Guid.NewGuid():N}:",
            ConnectTimeout = TimeSpan.FromSeconds(5),
        });
        var store = new RedisSessionStore(connection);
        ISessionJournal journal = store;
        await SaveWhenReachableAsync(store, Snapshots.Create(TimeSpan.FromMinutes(5)));
        var held = Snapshots.Create(TimeSpan.FromMinutes(5), unacknowledged: 0);
        var heldLease = await journal.AcquireAsync(held.Id, TimeSpan.FromMinutes(5));
        Assert.True(await journal.CommitAsync(heldLease, new SessionJournalCommit { Messages = Snapshots.Messages(1, 2), Snapshot = held }));
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"{server.Configuration},allowAdmin=true");
        var config = admin.GetServer(server.Configuration);
        await config.ConfigSetAsync("maxmemory-policy", "noeviction");
        await config.ConfigSetAsync("maxmemory", "1");

        var saved = await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await store.SaveAsync(Snapshots.Create(TimeSpan.FromMinutes(1))));
        Assert.Contains("OOM", saved.Message, StringComparison.Ordinal);
        var snapshot = Snapshots.Create(TimeSpan.FromMinutes(1));
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () => await journal.AcquireAsync(snapshot.Id, TimeSpan.FromMinutes(1)));

        // A commit that carries an ack with its message is refused whole: its first write is the append, which a full
        // Redis refuses (an earlier write in the script would let the rest through).
        await Assert.ThrowsAsync<SessionStoreUnavailableException>(async () =>
            await journal.CommitAsync(heldLease, new SessionJournalCommit { Messages = Snapshots.Messages(3, 1), OutboundAcknowledged = 1 }));
        Assert.Equal([1L, 2L], (await journal.ReadAsync(held.Id))!.Unacknowledged.Select(m => m.Sequence));

        await config.ConfigSetAsync("maxmemory", "0");
        var lease = await journal.AcquireAsync(snapshot.Id, TimeSpan.FromMinutes(1));
        Assert.True(await journal.CommitAsync(lease, new SessionJournalCommit { Messages = Snapshots.Messages(1, 2), Snapshot = snapshot }));
    }

    private static async Task SaveWhenReachableAsync(RedisSessionStore store, Session.Store.SessionSnapshot snapshot)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await store.SaveAsync(snapshot);
                return;
            }
            catch (SessionStoreUnavailableException) when (waited.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(100);
            }
        }
    }
}
