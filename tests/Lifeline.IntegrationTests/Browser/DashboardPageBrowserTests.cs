using System.Collections.Concurrent;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Lifeline.IntegrationTests.Browser;

/// <summary>The dashboard page in headless Chromium where its feed is not simply there: behind a prefix, and answering HTTP errors.</summary>
[Collection(SerialCollection.Name)]
public sealed class DashboardPageBrowserTests
{
    [Fact]
    public async Task BehindAProxyThatStripsAPathPrefix_ThePageFindsItsFeed()
    {
        // What a reverse proxy with "location /front/ { proxy_pass http://app/; }" does, and no PathBase set: the server
        // sees /lifeline/dashboard, the browser /front/lifeline/dashboard, and only /front/... reaches the server.
        await using var host = await LifelineTestHost.StartAsync(map: app =>
        {
            app.Use((context, next) =>
            {
                if (!context.Request.Path.StartsWithSegments("/front", out var rest))
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                }

                context.Request.Path = rest;
                return next(context);
            });
            app.UseRouting(); // after the rewrite, as behind the proxy
            app.MapLifelineDashboard();
        });
        var (playwright, browser) = await Chromium.LaunchAsync();
        using var disposePlaywright = playwright;
        await using var disposeBrowser = browser;
        var page = await browser.NewPageAsync();

        await page.GotoAsync($"http://127.0.0.1:{host.Port}/front/lifeline/dashboard");

        // Before, the page asked the server's own idea of its address (/lifeline/dashboard/events): 404 here.
        await page.WaitForFunctionAsync("() => window.__dashboard.connected && window.__dashboard.last !== null", null, Chromium.Wait);
    }

    [Fact]
    public async Task FeedAnswersWithAnHttpError_ThePageTriesAgainAndComesBack()
    {
        var failing = 0;
        var errorsAnswered = 0;
        var streams = new ConcurrentDictionary<HttpContext, byte>();
        await using var host = await LifelineTestHost.StartAsync(map: app =>
        {
            app.Use(async (context, next) =>
            {
                if (!context.Request.Path.StartsWithSegments("/lifeline/dashboard/events"))
                {
                    await next(context);
                    return;
                }

                if (Volatile.Read(ref failing) == 1)
                {
                    Interlocked.Increment(ref errorsAnswered);
                    context.Response.StatusCode = StatusCodes.Status502BadGateway; // a proxy while the process restarts
                    return;
                }

                streams.TryAdd(context, 0);
                try
                {
                    await next(context);
                }
                finally
                {
                    streams.TryRemove(context, out _);
                }
            });
            app.UseRouting();
            app.MapLifelineDashboard();
        });
        var (playwright, browser) = await Chromium.LaunchAsync();
        using var disposePlaywright = playwright;
        await using var disposeBrowser = browser;
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"http://127.0.0.1:{host.Port}/lifeline/dashboard");
        await page.WaitForFunctionAsync("() => window.__dashboard.connected", null, Chromium.Wait);

        // The link drops (the browser then tries again by itself) and the feed answers 502 meanwhile.
        Volatile.Write(ref failing, 1);
        foreach (var stream in streams.Keys)
        {
            stream.Abort();
        }

        await page.WaitForFunctionAsync("() => !window.__dashboard.connected", null, Chromium.Wait);
        await Wait.UntilAsync(() => Volatile.Read(ref errorsAnswered) >= 1, TimeSpan.FromSeconds(30), "the page's request to meet the 502");
        Volatile.Write(ref failing, 0);

        // Before, an HTTP error closed the page's EventSource for good while the page still said "retrying".
        await page.WaitForFunctionAsync("() => window.__dashboard.connected", null, Chromium.Wait);
    }
}
