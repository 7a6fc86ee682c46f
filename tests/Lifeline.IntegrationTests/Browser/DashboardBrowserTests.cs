using System.Text.Json;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Lifeline.IntegrationTests.Browser;

/// <summary>
/// The dashboard of <c>lifeline serve</c>, open in headless Chromium through a graceful restart: its chart shows the
/// 1012 closes (read from the page's data, <c>window.__dashboard</c>, not from pixels) and a screenshot is kept.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class DashboardBrowserTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ServeRestarts_DashboardChartShowsThe1012Closes()
    {
        var (serve, port) = await ServeProcess.StartAsync("--hint-min", "1", "--hint-max", "3");
        await using var _ = serve;
        var (playwright, browser) = await Chromium.LaunchAsync();
        using var __ = playwright;
        await using var ___ = browser;
        var clients = new List<PlainClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                clients.Add(await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws")));
            }

            var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 900 } });
            await page.GotoAsync($"http://127.0.0.1:{port}/lifeline/dashboard");
            await page.WaitForFunctionAsync("() => window.__dashboard.connected && window.__dashboard.last?.connections >= 3", null, Chromium.Wait);

            serve.Interrupt(); // Ctrl-C: 1012 with retry hints to every connection, then drain

            foreach (var client in clients)
            {
                Assert.Equal(1012, (await client.Closed.WaitAsync(TimeSpan.FromSeconds(30))).Code);
            }

            await page.WaitForFunctionAsync(
                "() => window.__dashboard.last.drain.draining && window.__dashboard.chart.some(c => c.code === 1012 && c.window >= 3)",
                null,
                Chromium.Wait);
            var state = JsonDocument.Parse(await page.EvaluateAsync<string>("() => JSON.stringify(window.__dashboard)")).RootElement;
            var series = state.GetProperty("chart").EnumerateArray().Single(c => c.GetProperty("code").GetInt32() == 1012);
            Assert.Equal(series.GetProperty("window").GetInt64(), series.GetProperty("buckets").EnumerateArray().Sum(b => b.GetInt64()));
            Assert.True(await page.EvaluateAsync<int>("() => document.querySelectorAll('#chart rect[data-code=\"1012\"]').length") > 0, "no 1012 bar drawn");
            var drain = state.GetProperty("last").GetProperty("drain");
            Assert.True(drain.GetProperty("connectionsAtStart").GetInt32() >= 3);
            Assert.True(drain.GetProperty("closesSent").GetInt64() >= 3);

            var screenshot = Path.Combine(AppContext.BaseDirectory, "TestResults", "dashboard-restart.png");
            Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
            Assert.True(new FileInfo(screenshot).Length > 0);
            output.WriteLine($"dashboard screenshot: {screenshot}");
            Console.WriteLine($"dashboard screenshot: {screenshot}");

            Assert.Equal(0, await serve.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }
}
