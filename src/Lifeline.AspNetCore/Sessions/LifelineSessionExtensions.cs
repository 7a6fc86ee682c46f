using Lifeline.AspNetCore;
using Lifeline.Session.Store;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Registers and maps lossless session endpoints (<c>lifeline.v1</c>).</summary>
public static class LifelineSessionExtensions
{
    /// <summary>
    /// Adds sessions on top of <c>AddLifeline</c> (called here if missing): the session manager, the default
    /// <see cref="InMemorySessionStore"/> as <see cref="ISessionStore"/> (register another store first to replace it), and the
    /// drain-file save on graceful shutdown / load on start.
    /// </summary>
    public static IServiceCollection AddLifelineSessions(this IServiceCollection services, Action<LifelineSessionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (!services.Any(d => d.ServiceType == typeof(LifelineServer)))
        {
            services.AddLifeline();
        }

        var options = services.AddOptions<LifelineSessionOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(sp => new InMemorySessionStore(null, sp.GetService<TimeProvider>(), sp.GetService<ILogger<InMemorySessionStore>>()));
        services.TryAddSingleton<ISessionStore>(sp => sp.GetRequiredService<InMemorySessionStore>());
        services.TryAddSingleton<LifelineSessionManager>();
        services.AddHostedService<SessionDrainService>();
        return services;
    }

    /// <summary>
    /// Maps a session endpoint. The handler runs once per logical session, not per socket, and is given a
    /// <see cref="LifelineSession"/> that stays valid while sockets come and go; its token is cancelled when the session
    /// ends or a drain hands it to the store. When the handler returns the session ends (its socket closes with 1000).
    /// Clients that do not offer <c>lifeline.v1</c> get a plain-mode, non-resumable session over their socket.
    /// Needs <see cref="AddLifelineSessions"/>.
    /// </summary>
    public static IEndpointConventionBuilder MapLifelineSession(this IEndpointRouteBuilder endpoints, string pattern, Func<LifelineSession, CancellationToken, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(handler);
        var manager = endpoints.ServiceProvider.GetService<LifelineSessionManager>()
            ?? throw new InvalidOperationException("MapLifelineSession needs the session services: call services.AddLifelineSessions() when building the app.");
        return endpoints.MapLifelineCore(pattern, (connection, _) => manager.RunSocketAsync(connection, handler), supportsSessions: true)
            .WithDisplayName($"Lifeline session {pattern}");
    }
}
