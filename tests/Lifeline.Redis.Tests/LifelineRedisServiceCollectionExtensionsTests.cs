using Lifeline.Session.Store;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lifeline.Redis.Tests;

public sealed class LifelineRedisServiceCollectionExtensionsTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    [Fact]
    public async Task AddLifelineRedis_AfterInMemoryStore_ReplacesItAndSharesOneConnection()
    {
        var services = new ServiceCollection();
        services.AddSingleton<ISessionStore>(new InMemorySessionStore());
        services.AddLifelineRedis(o =>
        {
            o.Configuration = redis.Server.Configuration;
            o.KeyPrefix = $"t{Guid.NewGuid():N}:";
            o.NodeId = "node-x";
        });
        await using var provider = services.BuildServiceProvider();

        var store = provider.GetRequiredService<ISessionStore>();
        Assert.IsType<RedisSessionStore>(store);
        Assert.Single(provider.GetServices<ISessionStore>());
        Assert.Same(store, provider.GetRequiredService<IRedisSessionLog>());
        Assert.Equal("node-x", provider.GetRequiredService<RedisGroupFanout>().NodeId);
        Assert.Same(provider.GetRequiredService<LifelineRedisConnection>(), provider.GetRequiredService<LifelineRedisConnection>());

        var snapshot = Snapshots.Create(TimeSpan.FromMinutes(1));
        await store.SaveAsync(snapshot);
        Assert.NotNull(await store.TryTakeAsync(snapshot.Id));
    }

    [Fact]
    public void AddLifelineRedis_InvalidConfiguration_FailsValidation()
    {
        var services = new ServiceCollection();
        services.AddLifelineRedis(o => o.Configuration = "127.0.0.1:6379,unknownOption=1");
        using var provider = services.BuildServiceProvider();

        Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<LifelineRedisOptions>>().Value);
    }

    [Fact]
    public void Options_InvalidValues_ThrowInSetters()
    {
        var options = new LifelineRedisOptions();

        Assert.Equal(TimeSpan.FromSeconds(2), options.OperationTimeout);
        Assert.Equal("lifeline:", options.KeyPrefix);
        Assert.Equal("lifeline:fanout", options.FanoutChannel);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.OperationTimeout = TimeSpan.Zero);
        Assert.Throws<ArgumentException>(() => options.KeyPrefix = "a{b}");
        Assert.Throws<ArgumentException>(() => options.NodeId = "a:b");
        Assert.Throws<ArgumentException>(() => options.Configuration = " ");
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxLogMessages = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxFanoutPayloadBytes = 32 * 1024 * 1024 + 1); // beyond Redis's pub/sub output limit
    }
}
