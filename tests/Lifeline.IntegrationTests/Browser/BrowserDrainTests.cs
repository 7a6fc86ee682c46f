using System.Text.Json;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Protocol;
using Microsoft.Playwright;

namespace Lifeline.IntegrationTests.Browser;

/// <summary>
/// A real browser (Debian's headless Chromium driven by Playwright) connected to <c>lifeline serve</c> sees the
/// drain as close code 1012 with the hint in the reason: the reason browsers cannot be answered with an HTTP status.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class BrowserDrainTests
{
    private const string ChromiumPath = "/usr/bin/chromium";

    [Fact]
    public async Task ServeDrains_BrowserOnCloseSees1012AndTheHint()
    {
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: run .ci/install-deps (apt-get install chromium).");
        var (serve, port) = await ServeProcess.StartAsync("--hint-min", "1", "--hint-max", "3");
        await using var _ = serve;

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync();

        // Served from http://127.0.0.1:PORT (an about:blank page may not open ws://127.0.0.1 in current Chromium).
        await page.GotoAsync($"http://127.0.0.1:{port}/");
        await page.WaitForFunctionAsync("() => window.lifelineOpen === true", null, new PageWaitForFunctionOptions { Timeout = 15_000 });
        await page.WaitForFunctionAsync("() => document.getElementById('log').textContent.includes('message hello from the browser')", null, new PageWaitForFunctionOptions { Timeout = 15_000 });

        serve.Interrupt(); // what Ctrl-C or SIGTERM does: the graceful restart

        await page.WaitForFunctionAsync("() => window.lifelineCloses.length > 0", null, new PageWaitForFunctionOptions { Timeout = 15_000 });
        var closes = JsonDocument.Parse(await page.EvaluateAsync<string>("() => JSON.stringify(window.lifelineCloses)")).RootElement;
        var close = closes[0];
        Assert.Equal(1012, close.GetProperty("code").GetInt32());
        var reason = close.GetProperty("reason").GetString();
        Assert.True(RetryHint.TryParse(reason, out var hint), $"no hint in '{reason}'");
        Assert.InRange(hint, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3));
        Assert.True(close.GetProperty("wasClean").GetBoolean());
        Assert.Equal(0, await serve.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("draining 1 connections", serve.Output, StringComparison.Ordinal);
    }
}
