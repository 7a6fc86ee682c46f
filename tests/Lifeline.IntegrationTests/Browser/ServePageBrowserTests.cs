using System.Text.Json;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Protocol;

namespace Lifeline.IntegrationTests.Browser;

/// <summary>
/// The page at "/" of <c>lifeline serve</c> runs lifeline.js (loaded from /lifeline/lifeline.js) in headless Chromium:
/// through a restart of the server it sees 1012 with the hint, waits the delay the hint gives, reconnects to the new
/// process on the same port and logs all of it.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class ServePageBrowserTests
{
    [Fact]
    public async Task ServeRestarts_PageReconnectsAfterTheHintedDelayAndLogsIt()
    {
        var (serve, port) = await ServeProcess.StartOnPortAsync(LoopbackPorts.ForRestartableServer(), "--hint-min", "1", "--hint-max", "2");
        CliProcess? restarted = null;
        var (playwright, browser) = await Chromium.LaunchAsync();
        using var __ = playwright;
        await using var ___ = browser;
        try
        {
            var page = await browser.NewPageAsync();
            await page.GotoAsync($"http://127.0.0.1:{port}/");
            await page.WaitForFunctionAsync("() => window.lifelineOpen === true && window.lifelineSession === false", null, Chromium.Wait);
            await page.WaitForFunctionAsync("() => document.getElementById('log').textContent.includes('message hello from the browser')", null, Chromium.Wait);

            serve.Interrupt(); // the restart: drain with 1012, the process ends, a new one starts on the same port
            await page.WaitForFunctionAsync("() => window.lifelineCloses.length > 0", null, Chromium.Wait);
            Assert.Equal(0, await serve.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
            (restarted, _) = await ServeProcess.StartOnPortAsync(port, "--hint-min", "1", "--hint-max", "2");

            await page.WaitForFunctionAsync("() => window.lifelineOpens.length >= 2", null, Chromium.Wait);
            var closes = Read(await page.EvaluateAsync<string>("() => JSON.stringify(window.lifelineCloses)"));
            var reconnects = Read(await page.EvaluateAsync<string>("() => JSON.stringify(window.lifelineReconnects)"));
            var opens = Read(await page.EvaluateAsync<string>("() => JSON.stringify(window.lifelineOpens)"));
            var log = await page.EvaluateAsync<string>("() => document.getElementById('log').textContent");

            var close = closes[0];
            Assert.Equal(1012, close.GetProperty("code").GetInt32());
            var reason = close.GetProperty("reason").GetString();
            Assert.True(RetryHint.TryParse(reason, out var hint), $"no hint in '{reason}'");
            Assert.InRange(hint, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
            Assert.True(close.GetProperty("willReconnect").GetBoolean());
            var delay = close.GetProperty("delay").GetDouble();
            Assert.Equal(hint.TotalMilliseconds, delay); // the client chose the server's hint

            Assert.Equal(1012, reconnects[0].GetProperty("code").GetInt32());
            Assert.Equal(delay, reconnects[0].GetProperty("delay").GetDouble());
            var reopened = opens[1];
            Assert.True(reopened.GetProperty("reconnected").GetBoolean());
            var waited = reopened.GetProperty("at").GetDouble() - reconnects[0].GetProperty("at").GetDouble();
            Assert.True(waited >= delay - 5, $"reconnected after {waited} ms, before the {delay} ms the hint asked for");

            Assert.Contains("close 1012 ", log, StringComparison.Ordinal);
            Assert.Contains($"reconnect in {delay} ms", log, StringComparison.Ordinal);
            Assert.Contains($"after 1012, delay {delay} ms", log, StringComparison.Ordinal);
            Assert.Contains("reconnected ws://", log, StringComparison.Ordinal);
        }
        finally
        {
            await serve.DisposeAsync();
            if (restarted is not null)
            {
                await restarted.DisposeAsync();
            }
        }
    }

    private static JsonElement[] Read(string json) => [.. JsonDocument.Parse(json).RootElement.EnumerateArray().Select(e => e.Clone())];
}
