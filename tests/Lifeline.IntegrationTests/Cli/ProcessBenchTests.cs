using System.Globalization;
using System.Text.RegularExpressions;
using Lifeline.Cli;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary>
/// <c>lifeline bench</c> run as the real process: a scenario with tiny counts, a scenario it does not know, and Ctrl-C
/// while the server it started in a process of its own is up.
/// </summary>
[Collection(ToolProcessCollection.Name)]
public sealed partial class ProcessBenchTests
{
    private static readonly string[] EchoRows = ["raw ClientWebSocket", "raw, runtime pong check", "Lifeline plain", "Lifeline session", "Websocket.Client 5.5.1"];

    [Fact]
    public async Task Bench_SmokeEcho_PrintsTheEchoTableWithEveryClientAndEndsItsServerProcess()
    {
        await using var tool = ToolProcess.Start("bench", "--smoke", "echo");
        tool.CloseInput();
        var host = await WaitForHostProcessAsync(tool);

        var exit = await tool.Exit.WaitAsync(TimeSpan.FromSeconds(120));

        Assert.True(exit == ExitCodes.Success, $"exit {exit}; stderr: {tool.Error}");
        Assert.Contains("### 3. Echo round trip", tool.Output, StringComparison.Ordinal);
        foreach (var row in EchoRows)
        {
            Assert.Contains($"| {row} |", tool.Output, StringComparison.Ordinal);
        }

        Assert.Contains("suite: ", tool.Output, StringComparison.Ordinal);
        Assert.Contains("bench: echo (1 of 1)\n", tool.Error, StringComparison.Ordinal); // progress goes to stderr
        Assert.Contains("0 scenario(s) failed", tool.Output, StringComparison.Ordinal);
        await WaitForEndAsync(host, "the run");
    }

    [Fact]
    public async Task Bench_UnknownScenario_ErrorNamesTheScenarios_Exit2()
    {
        var (exit, output, error) = await ToolProcess.RunAsync("bench", "echo", "latency");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Equal(string.Empty, output);
        Assert.Contains("error: 'latency' is not a scenario: name any of throughput, echo, memory-idle, memory, storm, deadlink", error, StringComparison.Ordinal);
        Assert.Contains("usage: run 'lifeline bench --help'", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_CtrlCWhileTheServerProcessRuns_Exits130AndTheServerProcessEnds()
    {
        // The full echo scenario: its clients make 120,000 round trips each, so it is still running at the signal.
        await using var tool = ToolProcess.Start("bench", "echo");
        tool.CloseInput();
        var host = await WaitForHostProcessAsync(tool);
        Assert.False(HasEnded(host), "the server process should still run before the signal");

        tool.Signal(ToolProcess.SIGINT);

        Assert.Equal(ExitCodes.Interrupted, await tool.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("bench interrupted", tool.Error, StringComparison.Ordinal);
        await WaitForEndAsync(host, "the interrupted run");
    }

    /// <summary>The server process the tool started for the echo scenario, as the tool names it on stderr.</summary>
    private static async Task<int> WaitForHostProcessAsync(ToolProcess tool)
    {
        await Wait.UntilAsync(() => ServerProcessLine().IsMatch(tool.Error), TimeSpan.FromSeconds(60),
            "the tool naming its server process on stderr");
        return int.Parse(ServerProcessLine().Match(tool.Error).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>Whether the process has ended: gone, or a zombie its parent has not reaped yet.</summary>
    private static bool HasEnded(int id)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{id}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true; // gone (DirectoryNotFoundException and FileNotFoundException are IOExceptions)
        }
    }

    private static Task WaitForEndAsync(int id, string after) =>
        Wait.UntilAsync(() => HasEnded(id), TimeSpan.FromSeconds(30), $"the suite's server process {id} to end after {after}");

    [GeneratedRegex(@"bench: server process (\d+) started\n")]
    private static partial Regex ServerProcessLine();
}
