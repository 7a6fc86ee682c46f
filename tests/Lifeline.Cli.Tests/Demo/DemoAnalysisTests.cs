using Lifeline.Cli.Demo;

namespace Lifeline.Cli.Tests.Demo;

/// <summary>The demo table's "time to detect (p50)".</summary>
public sealed class DemoAnalysisTests
{
    [Fact]
    public void NearestRank_Median_IsTheMiddleOrTheLowerOfTheTwoMiddles()
    {
        // Before, the upper middle: of two clients that noticed at 100 and 900 ms, the p50 read 900, the max.
        Assert.Equal(100, DemoAnalysis.NearestRank([100, 900], 0.5));
        Assert.Equal(50, DemoAnalysis.NearestRank([.. Enumerable.Range(1, 100).Select(i => (double)i)], 0.5));
        Assert.Equal(2, DemoAnalysis.NearestRank([1, 2, 3], 0.5));
        Assert.Equal(7, DemoAnalysis.NearestRank([7], 0.5));
    }
}
