using Lifeline.Cli.Rendering;

namespace Lifeline.Cli.Tests.Rendering;

/// <summary>The keep-alive interval idle-scan advises for the idle timeout it found.</summary>
public sealed class IdleScanAdviceTests
{
    [Theory]
    [InlineData(0.3, 0.15)] // before: 0.5, longer than the cut itself
    [InlineData(1, 0.5)]
    [InlineData(3, 1.5)]
    [InlineData(4, 2)]
    [InlineData(61, 30)]
    public void HalfOf_IsBelowTheTimeout_WholeSecondsFrom2s(double timeoutSeconds, double expected)
    {
        var interval = IdleScanReport.HalfOf(TimeSpan.FromSeconds(timeoutSeconds));

        Assert.Equal(expected, interval, 6);
        Assert.True(interval < timeoutSeconds);
    }
}
