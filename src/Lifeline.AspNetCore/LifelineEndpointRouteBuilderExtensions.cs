using System.Text.Json;
using Lifeline.AspNetCore;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps Lifeline WebSocket endpoints and the drain-aware health endpoint.</summary>
public static class LifelineEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps a WebSocket endpoint. The handler runs once per connection and the connection lives as long as it runs;
    /// when it returns the connection is closed with 1000, when it throws with 1011. The token passed to it is
    /// <see cref="LifelineConnection.Closing"/>: cancelled when the connection closes (see there for when exactly). No separate <c>UseWebSockets</c> call is needed.
    /// </summary>
    public static IEndpointConventionBuilder MapLifeline(this IEndpointRouteBuilder endpoints, string pattern, Func<LifelineConnection, CancellationToken, Task> handler) =>
        MapLifelineCore(endpoints, pattern, handler, supportsSessions: false);

    internal static IEndpointConventionBuilder MapLifelineCore(this IEndpointRouteBuilder endpoints, string pattern, Func<LifelineConnection, CancellationToken, Task> handler, bool supportsSessions)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(handler);
        var endpoint = ActivatorUtilities.CreateInstance<LifelineEndpoint>(endpoints.ServiceProvider, handler);
        endpoint.SupportsSessions = supportsSessions;
        var pipeline = endpoints.CreateApplicationBuilder()
            .Use((context, next) =>
            {
                // Watch what the WebSocket writes, so a connection records the Close frame it really sent.
                if (context.Features.Get<IHttpUpgradeFeature>() is { } upgrade)
                {
                    context.Features.Set<IHttpUpgradeFeature>(new SentCloseObserver(upgrade));

                    // An application-wide UseWebSockets() has already put its WebSocket feature over the unobserved
                    // upgrade (and checked the origin): drop it, so the one below is built over the observer.
                    context.Features.Set<IHttpWebSocketFeature>(null);
                }

                return next(context);
            })
            .UseWebSockets();
        pipeline.Run(endpoint.HandleAsync);
        return endpoints.Map(pattern, pipeline.Build()).WithDisplayName($"Lifeline {pattern}");
    }

    /// <summary>
    /// Maps a health endpoint for load balancers: 200 <c>{"status":"ready"}</c>, or 503 <c>{"status":"draining"}</c>
    /// once a drain has begun, so traffic is routed elsewhere before the connections are closed.
    /// </summary>
    public static IEndpointConventionBuilder MapLifelineHealth(this IEndpointRouteBuilder endpoints, string pattern = "/health")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.MapGet(pattern, (HttpContext context, LifelineServer server) =>
        {
            var draining = server.IsDraining;
            context.Response.StatusCode = draining ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
            return context.Response.WriteAsync(JsonSerializer.Serialize(new { status = draining ? "draining" : "ready", connections = server.Registry.Count }));
        });
    }
}
