using Lifeline.Reconnect;

namespace Lifeline.Tests.Reconnect;

public class BackoffTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(5, 16)]
    [InlineData(6, 30)]
    [InlineData(60, 30)]
    public void Exponential_DoublesUntilTheCap(int attempt, int expectedSeconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), Backoff.Exponential(attempt, Second, 2, TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Exponential_HugeAttempt_DoesNotOverflow()
    {
        var cap = TimeSpan.FromMinutes(2);
        Assert.Equal(cap, Backoff.Exponential(int.MaxValue, TimeSpan.FromDays(1), 1000, cap));
        Assert.Equal(cap, Backoff.Exponential(5000, Second, 2, cap));
    }

    [Fact]
    public void FullJitter_StaysWithinZeroAndTheCappedValue_AndSpreads()
    {
        var random = new Random(42);
        var capped = TimeSpan.FromSeconds(8);
        var samples = Enumerable.Range(0, 2000).Select(_ => Backoff.Jitter(JitterMode.Full, capped, Second, capped, null, random)).ToArray();

        Assert.All(samples, s => Assert.InRange(s, TimeSpan.Zero, capped));
        // Full jitter spreads over the whole range: both the lowest and the highest quarter are used.
        Assert.Contains(samples, s => s < TimeSpan.FromSeconds(2));
        Assert.Contains(samples, s => s > TimeSpan.FromSeconds(6));
    }

    [Fact]
    public void DecorrelatedJitter_StaysBetweenBaseAndThreeTimesPrevious_Capped()
    {
        var random = new Random(7);
        var cap = TimeSpan.FromSeconds(10);
        var previous = TimeSpan.FromSeconds(2);
        for (var i = 0; i < 500; i++)
        {
            var delay = Backoff.Jitter(JitterMode.Decorrelated, cap, Second, cap, previous, random);
            Assert.InRange(delay, Second, TimeSpan.FromSeconds(6));
        }

        for (var i = 0; i < 500; i++)
        {
            Assert.InRange(Backoff.Jitter(JitterMode.Decorrelated, cap, Second, cap, TimeSpan.FromSeconds(9), random), Second, cap);
        }
    }

    [Fact]
    public void NoJitter_ReturnsTheCappedValue()
    {
        Assert.Equal(TimeSpan.FromSeconds(4), Backoff.Jitter(JitterMode.None, TimeSpan.FromSeconds(4), Second, TimeSpan.FromSeconds(30), null, new Random(1)));
    }
}
