using Lifeline.Benchmarks.Suite;

namespace Lifeline.Benchmarks.Tests;

/// <summary>Which scenarios a list of names runs (<c>lifeline bench all</c> was refused as "not a scenario").</summary>
public sealed class SuiteSelectionTests
{
    [Theory]
    [InlineData("", "throughput echo memory storm deadlink")]
    [InlineData("all", "throughput echo memory storm deadlink")]
    [InlineData("all memory-idle", "throughput echo memory-idle memory storm deadlink")]
    [InlineData("storm all", "throughput echo memory storm deadlink")]
    [InlineData("storm echo", "echo storm")]
    [InlineData("memory-idle", "memory-idle")]
    public void Selected_RunsTheNamedScenariosInSuiteOrder_AllStandsForTheWholeSuite(string names, string expected)
    {
        var only = names.Split(' ', StringSplitOptions.RemoveEmptyEntries);

        Assert.Null(SuiteRunner.UnknownScenario(only));
        Assert.Equal(expected.Split(' '), SuiteRunner.Selected(only));
    }

    [Fact]
    public void UnknownScenario_NamesTheWrongOneAndWhatToType()
    {
        var problem = SuiteRunner.UnknownScenario(["all", "latency"]);

        Assert.Equal("'latency' is not a scenario: name any of throughput, echo, memory-idle, memory, storm, deadlink, or none (or 'all') for all but memory-idle.", problem);
    }
}
