using Lifeline.AspNetCore;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Lifeline server side.</summary>
public static class LifelineServiceCollectionExtensions
{
    /// <summary>
    /// Adds the connection registry, admission and the graceful restart on shutdown. Options are validated when
    /// the host starts, so a bad value fails the start with a message naming it.
    /// </summary>
    public static IServiceCollection AddLifeline(this IServiceCollection services, Action<LifelineServerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<LifelineServerOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LifelineServerOptions>, LifelineServerOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<LifelineConnectionRegistry>();
        services.TryAddSingleton<LifelineServer>();
        services.TryAddSingleton<Lifeline.AspNetCore.Dashboard.LifelineDashboard>(); // listens only once MapLifelineDashboard resolves it
        services.AddHostedService<LifelineDrainService>();
        return services;
    }
}
