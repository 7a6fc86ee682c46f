namespace Lifeline.Cli.Tests.Commands;

public class UsageTests
{
    [Theory]
    [InlineData("conect", "connect")]
    [InlineData("idlescan", "idle-scan")]
    [InlineData("prxy", "proxy")]
    [InlineData("explian", "explain")]
    public async Task MistypedCommand_SuggestsTheClosest(string typed, string expected)
    {
        var run = await CliRun.RunAsync(typed);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains($"did you mean 'lifeline {expected}'?", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FarFromAnyCommand_NoSuggestion()
    {
        var run = await CliRun.RunAsync("xyzzyplugh");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.DoesNotContain("did you mean", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProbeSubprotocol_TakesOneValue_TheUrlAfterItIsTheUrl()
    {
        // Before, -s took every word after it, the URL included, and the probe stopped with "Required argument missing" (2).
        var run = await CliRun.RunAsync("probe", "-s", "chat", $"ws://127.0.0.1:{ClosedPort()}/", "--pings", "0", "--duration", "0", "--timeout", "5");

        Assert.Equal(ExitCodes.Failure, run.ExitCode); // the probe ran and found the port refused
        Assert.DoesNotContain("error:", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectStopOn_TakesOneValue_TheUrlAfterItIsTheUrl()
    {
        var run = await CliRun.RunAsync("connect", "--stop-on", "4000", $"ws://127.0.0.1:{ClosedPort()}/", "-n", "--retries", "0");

        Assert.Equal(ExitCodes.CouldNotConnect, run.ExitCode);
    }

    [Theory]
    [InlineData("probe")]
    [InlineData("connect")]
    [InlineData("idle-scan")]
    public async Task HostNameLongerThanDnsAllows_IsAUsageError(string command)
    {
        // Five labels of 60 characters: 304 in all, over DNS's 253. Before, probe reported the resolver's exception as
        // "a bug in lifeline" (exit 1).
        var host = string.Join('.', Enumerable.Repeat(new string('a', 60), 5));

        var run = await CliRun.RunAsync(command, $"ws://{host}/");

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.StartsWith("error: ", run.Error, StringComparison.Ordinal);
        Assert.Contains("at most 253", run.Error, StringComparison.Ordinal);
        Assert.Contains("usage:", run.Error, StringComparison.Ordinal);
    }

    /// <summary>
    /// A port on 127.0.0.1 that nothing listens on: port 1 (tcpmux), privileged and unused. A port just released by a
    /// listener could be taken meanwhile by a server another test starts on port 0.
    /// </summary>
    private static int ClosedPort() => 1;
}
