using Microsoft.Playwright;

namespace Lifeline.IntegrationTests.Browser;

/// <summary>Debian's headless Chromium through Playwright (Playwright's own browser download does not work here).</summary>
internal static class Chromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    /// <summary>Generous: a loaded two-core machine runs the browser, the server and the test together.</summary>
    public static readonly PageWaitForFunctionOptions Wait = new() { Timeout = 30_000, PollingInterval = 50 };

    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        Assert.True(File.Exists(ExecutablePath), $"{ExecutablePath} is missing: run .ci/install-deps (apt-get install chromium).");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        return (playwright, browser);
    }
}
