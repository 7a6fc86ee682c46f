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
}
