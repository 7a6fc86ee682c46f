using Lifeline.Cli;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary>
/// <c>lifeline bench</c> run as the real process: a scenario with tiny counts, a scenario it does not know, and Ctrl-C
/// while the server it started in a process of its own is up.
/// </summary>
[Collection(ToolProcessCollection.Name)]
public sealed class ProcessBenchTests
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
        Assert.Contains("0 scenario(s) failed", tool.Output, StringComparison.Ordinal);
        Assert.True(host.WaitForExit(TimeSpan.FromSeconds(30)), "the suite's server process outlived the run");
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
        // The full echo scenario: its clients make 100,000 round trips each, so it is still running at the signal.
        await using var tool = ToolProcess.Start("bench", "echo");
        tool.CloseInput();
        var host = await WaitForHostProcessAsync(tool);

        tool.Signal(ToolProcess.SIGINT);

        Assert.Equal(ExitCodes.Interrupted, await tool.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("bench interrupted", tool.Error, StringComparison.Ordinal);
        Assert.True(host.WaitForExit(TimeSpan.FromSeconds(30)), "the suite's server process outlived the interrupted run");
    }

    /// <summary>The server process the tool started for the echo scenario (a child running with the host argument).</summary>
    private static async Task<System.Diagnostics.Process> WaitForHostProcessAsync(ToolProcess tool)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            foreach (var child in ChildProcessIds(tool.Id))
            {
                if (CommandLine(child).Contains("--bench-host-process", StringComparison.Ordinal))
                {
                    return System.Diagnostics.Process.GetProcessById(child);
                }
            }

            Assert.False(tool.Exit.IsCompleted, $"the tool ended before its server process was seen; stderr: {tool.Error}");
            await Task.Delay(50, bound.Token);
        }
    }

    private static IEnumerable<int> ChildProcessIds(int parent)
    {
        string[] tasks;
        try
        {
            tasks = Directory.GetDirectories($"/proc/{parent}/task");
        }
        catch (DirectoryNotFoundException)
        {
            yield break;
        }

        foreach (var task in tasks)
        {
            string children;
            try
            {
                children = File.ReadAllText(Path.Combine(task, "children"));
            }
            catch (IOException)
            {
                continue; // the thread ended meanwhile
            }

            foreach (var id in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                yield return int.Parse(id, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }

    private static string CommandLine(int id)
    {
        try
        {
            return File.ReadAllText($"/proc/{id}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }
}
