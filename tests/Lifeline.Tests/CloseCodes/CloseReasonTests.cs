using System.Text;
using Lifeline.CloseCodes;

namespace Lifeline.Tests.CloseCodes;

public class CloseReasonTests
{
    [Fact]
    public void IsValid_123AsciiBytes_IsTrue_124IsFalse()
    {
        Assert.True(CloseReason.IsValid(new string('a', 123)));
        Assert.False(CloseReason.IsValid(new string('a', 124)));
        Assert.True(CloseReason.IsValid(Encoding.UTF8.GetBytes(new string('a', 123))));
        Assert.False(CloseReason.IsValid(Encoding.UTF8.GetBytes(new string('a', 124))));
    }

    [Fact]
    public void IsValid_MultiByteTextOverLimitInBytesButNotChars_IsFalse()
    {
        // 62 'é' are 62 chars but 124 bytes.
        var reason = new string('é', 62);
        Assert.Equal(124, Encoding.UTF8.GetByteCount(reason));
        Assert.False(CloseReason.IsValid(reason));
        Assert.Contains("124 bytes", CloseReason.Validate(reason), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 0xC3 })]                   // truncated two-byte sequence
    [InlineData(new byte[] { 0xFF, 0x41 })]             // never valid in UTF-8
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]       // an encoded surrogate
    [InlineData(new byte[] { 0xC0, 0xAF })]             // overlong encoding
    public void IsValid_InvalidUtf8Bytes_IsFalse(byte[] bytes)
    {
        Assert.False(CloseReason.IsValid(bytes));
    }

    [Fact]
    public void Validate_LoneSurrogate_ExplainsTheProblem()
    {
        var problem = CloseReason.Validate("bad \uD800 text");
        Assert.NotNull(problem);
        Assert.Contains("surrogate", problem, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => CloseReason.ThrowIfInvalid("bad \uD800 text"));
    }

    [Fact]
    public void Truncate_CutInsideATwoByteCharacter_DropsTheWholeCharacter()
    {
        // 'a' + 61 x 'é' = 1 + 122 = 123 bytes; one more 'é' must not be split.
        var reason = "a" + new string('é', 62);
        var truncated = CloseReason.Truncate(reason);
        Assert.Equal("a" + new string('é', 61), truncated);
        Assert.Equal(123, Encoding.UTF8.GetByteCount(truncated));
    }

    [Fact]
    public void Truncate_CutInsideASurrogatePair_KeepsUtf8Whole()
    {
        // 120 ASCII bytes + an emoji (4 bytes) = 124: the emoji must go whole.
        var reason = new string('x', 120) + "\U0001F600";
        var truncated = CloseReason.Truncate(reason);
        Assert.Equal(new string('x', 120), truncated);
        Assert.True(CloseReason.IsValid(truncated));

        var three = CloseReason.Truncate("€€", 5); // '€' is 3 bytes
        Assert.Equal("€", three);
    }

    [Fact]
    public void Truncate_ShortReason_IsUnchanged_NullBecomesEmpty()
    {
        Assert.Equal("retry-after-ms=1500", CloseReason.Truncate("retry-after-ms=1500"));
        Assert.Equal(string.Empty, CloseReason.Truncate(null));
    }
}
