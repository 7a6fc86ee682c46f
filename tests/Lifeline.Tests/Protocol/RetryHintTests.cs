using System.Text;
using Lifeline.CloseCodes;
using Lifeline.Protocol;

namespace Lifeline.Tests.Protocol;

public class RetryHintTests
{
    [Theory]
    [InlineData("retry-after-ms=2350", 2350)]
    [InlineData("Service Restart; retry-after-ms=1500", 1500)]
    [InlineData("retry-after-ms=0", 0)]
    [InlineData("overloaded, RETRY-AFTER-MS=42 please", 42)]
    [InlineData("retry-after-ms=000000000002500", 2500)] // leading zeros are not a huge number (before: the first ten digits, 0)
    [InlineData("retry-after-ms=0000000000000", 0)]
    public void TryParse_TokenAnywhere_ReadsMilliseconds(string reason, int expected)
    {
        Assert.True(RetryHint.TryParse(reason, out var delay));
        Assert.Equal(TimeSpan.FromMilliseconds(expected), delay);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Service Restart")]
    [InlineData("retry-after-ms=")]
    [InlineData("retry-after-ms=abc")]
    [InlineData("xretry-after-ms=100")]
    [InlineData("retry-after-ms=12s")]
    public void TryParse_NoValidToken_ReturnsFalse(string? reason)
    {
        Assert.False(RetryHint.TryParse(reason, out _));
    }

    [Fact]
    public void TryParse_HugeValue_IsCappedAtOneDay()
    {
        Assert.True(RetryHint.TryParse("retry-after-ms=99999999999999999999", out var delay));
        Assert.Equal(RetryHint.MaxValue, delay);
    }

    [Fact]
    public void AppendTo_LongText_IsShortenedAndTheTokenKept()
    {
        var reason = RetryHint.AppendTo(new string('é', 100), TimeSpan.FromMilliseconds(4321));
        Assert.True(CloseReason.IsValid(reason));
        Assert.True(Encoding.UTF8.GetByteCount(reason) <= 123);
        Assert.True(RetryHint.TryParse(reason, out var delay));
        Assert.Equal(TimeSpan.FromMilliseconds(4321), delay);
    }

    [Fact]
    public void Format_RoundTrips()
    {
        Assert.Equal("retry-after-ms=1000", RetryHint.Format(TimeSpan.FromSeconds(1)));
        Assert.Equal("Service Restart; retry-after-ms=2000", RetryHint.AppendTo("Service Restart", TimeSpan.FromSeconds(2)));
    }
}
