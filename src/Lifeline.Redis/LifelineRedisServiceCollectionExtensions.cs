using Lifeline.Redis;
using Lifeline.Session.Store;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Lifeline on Redis.</summary>
public static class LifelineRedisServiceCollectionExtensions
{
    /// <summary>
    /// Puts the session store and group fan-out on Redis: registers <see cref="LifelineRedisOptions"/> (validated at
    /// start), one <see cref="LifelineRedisConnection"/>, <see cref="RedisSessionStore"/> as the
    /// <see cref="ISessionStore"/> (replacing any store registered before, such as the in-memory default) and as
    /// <see cref="IRedisSessionLog"/> and <see cref="ISessionJournal"/> (a server's session layer then keeps every
    /// session in Redis), and <see cref="RedisGroupFanout"/> as <see cref="ISessionGroupFanout"/> (group sends reach every node). All singletons. Nothing connects until first use.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Sets the options, for example <c>o.Configuration = "127.0.0.1:6379"</c>.</param>
    public static IServiceCollection AddLifelineRedis(this IServiceCollection services, Action<LifelineRedisOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<LifelineRedisOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.Validate(o => o.Validate() is null, "LifelineRedisOptions.Configuration is not a valid StackExchange.Redis configuration.").ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new LifelineRedisConnection(
            sp.GetRequiredService<IOptions<LifelineRedisOptions>>(),
            sp.GetService<Logging.ILogger<LifelineRedisConnection>>(),
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new RedisSessionStore(sp.GetRequiredService<LifelineRedisConnection>()));
        services.TryAddSingleton(sp => new RedisGroupFanout(sp.GetRequiredService<LifelineRedisConnection>()));
        services.RemoveAll<ISessionStore>();
        services.AddSingleton<ISessionStore>(sp => sp.GetRequiredService<RedisSessionStore>());
        services.TryAddSingleton<IRedisSessionLog>(sp => sp.GetRequiredService<RedisSessionStore>());
        services.RemoveAll<ISessionJournal>();
        services.AddSingleton<ISessionJournal>(sp => sp.GetRequiredService<RedisSessionStore>());
        services.RemoveAll<ISessionGroupFanout>();
        services.AddSingleton<ISessionGroupFanout>(sp => sp.GetRequiredService<RedisGroupFanout>());
        return services;
    }
}
