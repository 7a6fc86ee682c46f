using System.Text.Json;

namespace Lifeline.Cli.Tests.Commands;

public class CatalogCommandsTests
{
    [Fact]
    public async Task Explain_1006_ShowsEveryFact()
    {
        var run = await CliRun.RunAsync("explain", "1006");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("1006 Abnormal Closure", run.Output, StringComparison.Ordinal);
        Assert.Contains("WebSocket protocol (1000-2999)", run.Output, StringComparison.Ordinal);
        Assert.Contains("only ever observed, never sent", run.Output, StringComparison.Ordinal);
        Assert.Contains("When you see it", run.Output, StringComparison.Ordinal);
        Assert.Contains("How to resolve it", run.Output, StringComparison.Ordinal);
        Assert.Contains("reconnect with exponential backoff", run.Output, StringComparison.Ordinal);
        Assert.Empty(run.Error);
    }

    [Theory]
    [InlineData("abnormal-closure", "1006 Abnormal Closure")]
    [InlineData("service-restart", "1012 Service Restart")]
    [InlineData("1016", "1016 Unassigned")]
    [InlineData("3500", "3500 Unassigned")]
    [InlineData("4321", "4321 Unassigned")]
    public async Task Explain_NameOrUnassignedCode_IsExplained(string input, string heading)
    {
        var run = await CliRun.RunAsync("explain", input);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains(heading, run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_UnassignedPrivateCode_DescribesThePrivateRange()
    {
        var run = await CliRun.RunAsync("explain", "4321", "--format", "json");

        using var json = JsonDocument.Parse(run.Output);
        Assert.Equal("private", json.RootElement.GetProperty("range").GetString());
        Assert.False(json.RootElement.GetProperty("registered").GetBoolean());
        Assert.Contains("private use", json.RootElement.GetProperty("meaning").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Explain_French_UsesTheFrenchHeadings()
    {
        var run = await CliRun.RunAsync("explain", "1012", "--lang", "fr");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("Redémarrage du service", run.Output, StringComparison.Ordinal);
        Assert.Contains("Quand vous le voyez", run.Output, StringComparison.Ordinal);
        Assert.Contains("Comment résoudre", run.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("explain", "99999")]
    [InlineData("explain", "foo")]
    [InlineData("explain", "-1")]
    [InlineData("compare", "1006")]
    [InlineData("compare", "1006", "bar")]
    [InlineData("explain", "1006", "--format", "xml")]
    [InlineData("explain", "1006", "--lang", "de")]
    [InlineData("nonsense")]
    [InlineData("explain", "99999", "--lang", "fr")]
    [InlineData("compare", "1006", "--lang", "fr", "--format", "markdown")]
    [InlineData("explain", "@/")] // a directory taken for a response file threw out of the parser before
    public async Task BadInput_ClearMessageUsageHint_ExitCode2(params string[] args)
    {
        var run = await CliRun.RunAsync(args);

        Assert.Equal(2, run.ExitCode);
        Assert.StartsWith("error: ", run.Error, StringComparison.Ordinal);
        Assert.Contains("usage:", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Error, StringComparison.Ordinal); // no stack trace
        Assert.Empty(run.Output);
    }

    [Theory]
    [InlineData("--format", "xml", "error: --format must be text, markdown or json, not 'xml'.")]
    [InlineData("--lang", "de", "error: --lang must be en or fr, not 'de'.")]
    public async Task UnknownChoice_OneLineNamingTheOptionAndItsValues(string option, string value, string expected)
    {
        // Before, System.CommandLine's own message ran over four lines with tabs ("Argument 'xml' not recognized. Must be one of:").
        var run = await CliRun.RunAsync("explain", "1006", option, value);

        Assert.Equal(2, run.ExitCode);
        Assert.Equal(expected, run.Error.Split('\n')[0].TrimEnd('\r'));
        Assert.StartsWith("usage:", run.Error.Split('\n')[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_OutOfRangeNumber_SaysWhatAValidCodeIs()
    {
        var run = await CliRun.RunAsync("explain", "99999");
        Assert.Contains("0 to 65535", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compare_1006And1012_Text_HasEverySection()
    {
        var run = await CliRun.RunAsync("compare", "1006", "1012");

        Assert.Equal(0, run.ExitCode);
        foreach (var expected in new[]
        {
            "WebSocket 1006 Abnormal Closure vs 1012 Service Restart", "Description", "When you see it",
            "How to resolve it", "Key differences", "When to use which",
            "1012 is sent on purpose by an endpoint in a Close frame; 1006 is never sent",
            "For 1012 (Service Restart)",
        })
        {
            Assert.Contains(expected, run.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Compare_French_Markdown_UsesTheSeedHeadings()
    {
        var run = await CliRun.RunAsync("compare", "1006", "1012", "--lang", "fr", "--format", "markdown");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("# WebSocket 1006 Fermeture anormale contre 1012 Redémarrage du service", run.Output, StringComparison.Ordinal);
        foreach (var heading in new[] { "### Description", "### Quand vous le voyez", "### Comment résoudre", "## Différences clés", "## Quand utiliser lequel" })
        {
            Assert.Contains(heading, run.Output, StringComparison.Ordinal);
        }

        Assert.Contains("1. 1006 : ", run.Output, StringComparison.Ordinal);
        Assert.Contains("- Pour 1012 (Redémarrage du service)", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compare_Json_IsStructured()
    {
        var run = await CliRun.RunAsync("compare", "abnormal-closure", "1012", "--format", "json");

        Assert.Equal(0, run.ExitCode);
        using var json = JsonDocument.Parse(run.Output);
        var root = json.RootElement;
        Assert.Equal(1006, root.GetProperty("first").GetProperty("code").GetInt32());
        Assert.Equal(1012, root.GetProperty("second").GetProperty("code").GetInt32());
        Assert.False(root.GetProperty("first").GetProperty("canBeSent").GetBoolean());
        Assert.Equal("reconnectSoon", root.GetProperty("second").GetProperty("defaultReaction").GetString());
        Assert.True(root.GetProperty("keyDifferences").GetArrayLength() >= 5);
        Assert.Equal(2, root.GetProperty("whenToUseWhich").GetArrayLength());
    }

    [Fact]
    public async Task Compare_FrenchJson_KeepsAccentsReadable()
    {
        var run = await CliRun.RunAsync("compare", "1006", "1012", "--lang", "fr", "--format", "json");

        using var json = JsonDocument.Parse(run.Output);
        Assert.Equal("fr", json.RootElement.GetProperty("language").GetString());
        Assert.Contains("Redémarrage", run.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("en", "Service Restart", "reconnect soon")]
    [InlineData("fr", "Redémarrage du service", "se reconnecter bientôt")]
    public async Task Codes_ListsEveryRegisteredCodeWithItsReaction(string language, string name1012, string reaction1012)
    {
        var run = await CliRun.RunAsync("codes", "--lang", language, "--format", "markdown");

        Assert.Equal(0, run.ExitCode);
        var rows = run.Output.Split('\n').Where(line => line.StartsWith("| 1", StringComparison.Ordinal) || line.StartsWith("| 3", StringComparison.Ordinal)).ToArray();
        Assert.Equal(19, rows.Length);
        Assert.Contains(rows, row => row.Contains("1012", StringComparison.Ordinal) && row.Contains(name1012, StringComparison.Ordinal) && row.Contains(reaction1012, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Codes_Text_RendersATable()
    {
        var run = await CliRun.RunAsync("codes");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("Try Again Later", run.Output, StringComparison.Ordinal);
        Assert.Contains("3008", run.Output, StringComparison.Ordinal);
    }
}
