using Lifeline.Benchmarks.Suite;
using Xunit.Abstractions;

namespace Lifeline.Benchmarks.Tests;

/// <summary>CI's check that every scenario of the benchmark suite still runs (tiny counts; no figure is asserted).</summary>
public sealed class SuiteSmokeTests(ITestOutputHelper output)
{
    [Fact(Timeout = 180_000)]
    public async Task RunAsync_Smoke_EveryScenarioRuns()
    {
        using var writer = new StringWriter();
        var exit = await SuiteRunner.RunAsync(smoke: true, [], writer, Program.SuiteHost);
        output.WriteLine(writer.ToString());
        Assert.Equal(0, exit);
        foreach (var heading in new[] { "1. Receive", "2. Send", "3. Echo", "4. Restart storm", "5. Dead-link", "6a. Memory", "6b." })
        {
            Assert.Contains(heading, writer.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task RedisNode_Smoke_BothStoresRunAndEveryEchoArrivesOnce()
    {
        using var writer = new StringWriter();
        var exit = await RedisNodeRunner.RunAsync(["2", "50", "1"], writer);
        output.WriteLine(writer.ToString());
        Assert.Equal(0, exit);
        Assert.Contains("| in-memory (default) |", writer.ToString(), StringComparison.Ordinal);
        Assert.Contains("| Redis |", writer.ToString(), StringComparison.Ordinal);
    }
}
