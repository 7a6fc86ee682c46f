using System.Diagnostics;
using System.Text.Json;

namespace Lifeline.Packaging.Tests;

[Collection(PackageFeedCollection.Name)]
public sealed class ToolTests(PackageFeedFixture feed)
{
    [Fact]
    public async Task ToolInstall_FromLocalFeed_ExplainCodesAndBenchRunFromTheInstalledTool()
    {
        var toolPath = Path.Combine(feed.WorkDirectory, "tools");
        // --add-source adds the local feed to the machine's configured sources (no source is named here).
        await DotnetProcess.RunCheckedAsync(feed.WorkDirectory, PackageFeedFixture.BuildTimeout,
            "tool", "install", PackageFeedFixture.ToolPackageId, "--tool-path", toolPath, "--add-source", feed.Feed, "--version", feed.Version);
        var lifeline = Path.Combine(toolPath, "lifeline");
        Assert.True(File.Exists(lifeline), "the tool's command is not called lifeline");

        var (explainExit, explain, _) = await RunToolAsync(lifeline, "explain", "1006");
        Assert.Equal(0, explainExit);
        Assert.Contains("1006", explain, StringComparison.Ordinal);
        Assert.Contains("Abnormal Closure", explain, StringComparison.Ordinal);

        var (codesExit, codes, _) = await RunToolAsync(lifeline, "codes", "--format", "json");
        Assert.Equal(0, codesExit);
        using var json = JsonDocument.Parse(codes);
        var text = json.RootElement.GetRawText();
        foreach (var code in new[] { "1000", "1006", "1011", "1012", "1013" })
        {
            Assert.Contains(code, text, StringComparison.Ordinal);
        }

        var (badExit, _, badError) = await RunToolAsync(lifeline, "explain", "not-a-code");
        Assert.Equal(2, badExit);
        Assert.StartsWith("error:", badError, StringComparison.Ordinal);

        // The benchmark suite ships inside the tool, Websocket.Client included, and starts its server process from the
        // install directory.
        var (benchExit, bench, benchError) = await RunToolAsync(lifeline, "bench", "--smoke", "echo");
        Assert.True(benchExit == 0, $"exit {benchExit}; stderr: {benchError}");
        Assert.Contains("| Lifeline session |", bench, StringComparison.Ordinal);
        Assert.Contains("| Websocket.Client 5.5.1 |", bench, StringComparison.Ordinal);
        Assert.Contains("0 scenario(s) failed", bench, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunToolAsync(string command, params string[] args)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        DotnetProcess.Prepare(start);
        start.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true); // bench starts a server process of its own: end it too
            throw;
        }

        return (process.ExitCode, await output, await error);
    }
}
