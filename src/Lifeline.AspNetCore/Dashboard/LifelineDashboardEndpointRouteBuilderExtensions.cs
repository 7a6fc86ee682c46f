using System.Text;
using System.Text.Json;
using Lifeline.AspNetCore.Dashboard;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the live Lifeline dashboard.</summary>
public static class LifelineDashboardEndpointRouteBuilderExtensions
{
    /// <summary>The prefix <see cref="MapLifelineDashboard"/> uses when none is given.</summary>
    public const string DefaultDashboardPath = "/lifeline/dashboard";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Maps the live dashboard under <paramref name="prefix"/> (default <c>/lifeline/dashboard</c>): the page itself
    /// (one self-contained HTML document, no external resources), <c>{prefix}/data</c> (the current snapshot as JSON)
    /// and <c>{prefix}/events</c> (the same snapshot pushed once per second as Server-Sent Events, ending after a drain
    /// when the host stops). The data comes from the meter "Lifeline" and this server's registry and drain state.
    /// Requires <c>AddLifeline</c>. The metrics listener starts here, so the page shows what happened since mapping.
    /// </summary>
    /// <returns>The group of the three endpoints: add the application's own authorization with <c>RequireAuthorization(...)</c>.</returns>
    /// <remarks>The dashboard shows operational data; nothing protects it unless the application adds authorization.</remarks>
    public static IEndpointConventionBuilder MapLifelineDashboard(this IEndpointRouteBuilder endpoints, string prefix = DefaultDashboardPath)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrWhiteSpace(prefix);
        prefix = "/" + prefix.Trim('/');
        var dashboard = endpoints.ServiceProvider.GetService<LifelineDashboard>()
            ?? throw new InvalidOperationException("Call services.AddLifeline() before building the application: the dashboard shows its server.");

        var group = endpoints.MapGroup(prefix);
        string[] getOrHead = [HttpMethods.Get, HttpMethods.Head]; // HEAD for uptime checks and proxies' probes
        group.MapMethods(string.Empty, getOrHead, (HttpContext context) => WritePageAsync(context)).WithDisplayName($"Lifeline dashboard {prefix}");
        group.MapMethods("/data", getOrHead, (HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            return Results.Json(dashboard.Capture(), Json);
        }).WithDisplayName($"Lifeline dashboard data {prefix}/data");
        group.MapGet("/events", (HttpContext context, IHostApplicationLifetime lifetime, TimeProvider time) => StreamAsync(context, dashboard, lifetime, time))
            .WithDisplayName($"Lifeline dashboard events {prefix}/events");
        return group;
    }

    private static Task WritePageAsync(HttpContext context)
    {
        // The page finds its feed relative to its own address (see dashboard.html), so it works behind a proxy that strips a prefix.
        var html = DashboardPage.Html;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        return context.Response.WriteAsync(html, context.RequestAborted);
    }

    /// <summary>
    /// One snapshot per second until the client goes. When the host stops, the stream carries on through the drain
    /// (so the page shows it), sends the final snapshot once the drain is over and ends, so it does not hold Kestrel's
    /// own shutdown.
    /// </summary>
    private static async Task StreamAsync(HttpContext context, LifelineDashboard dashboard, IHostApplicationLifetime lifetime, TimeProvider time)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache, no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var aborted = context.RequestAborted;
        try
        {
            await response.WriteAsync("retry: 2000\n\n", aborted);
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
            var stopping = lifetime.ApplicationStopping;
            DateTimeOffset? stopSeen = null;
            while (true)
            {
                await WriteEventAsync(response, "snapshot", dashboard.CaptureShared().Json(Serialize), aborted);
                if (stopping.IsCancellationRequested)
                {
                    stopSeen ??= time.GetUtcNow();

                    // The drain may start a moment after ApplicationStopping (or before it, as with lifeline serve).
                    var drainOver = dashboard.Drain is { IsCompleted: true };
                    if (drainOver || (dashboard.Drain is null && time.GetUtcNow() - stopSeen > TimeSpan.FromSeconds(5)))
                    {
                        await WriteEventAsync(response, "snapshot", Serialize(dashboard.Capture()), aborted); // fresh: the drain's end
                        await response.WriteAsync("event: end\ndata: {}\n\n", aborted);
                        return;
                    }
                }

                if (!await timer.WaitForNextTickAsync(aborted))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The page went away.
        }
        catch (IOException) when (aborted.IsCancellationRequested)
        {
            // The page went away mid-write.
        }
    }

    private static string Serialize(DashboardSnapshot snapshot) => JsonSerializer.Serialize(snapshot, Json);

    private static async Task WriteEventAsync(HttpResponse response, string name, string json, CancellationToken cancellationToken)
    {
        var text = new StringBuilder(json.Length + 32).Append("event: ").Append(name).Append("\ndata: ")
            .Append(json).Append("\n\n").ToString();
        await response.WriteAsync(text, cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }
}
