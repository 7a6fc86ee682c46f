using System.Globalization;
using System.Net.WebSockets;
using Lifeline.CloseCodes;

namespace Lifeline.Tests.CloseCodes;

public class CloseCodeTests
{
    [Theory]
    [InlineData(0, CloseCodeRange.NotUsed)]
    [InlineData(999, CloseCodeRange.NotUsed)]
    [InlineData(1000, CloseCodeRange.Protocol)]
    [InlineData(2999, CloseCodeRange.Protocol)]
    [InlineData(3000, CloseCodeRange.Registered)]
    [InlineData(3999, CloseCodeRange.Registered)]
    [InlineData(4000, CloseCodeRange.Private)]
    [InlineData(4999, CloseCodeRange.Private)]
    [InlineData(5000, CloseCodeRange.Invalid)]
    [InlineData(65535, CloseCodeRange.Invalid)]
    public void Range_AtEveryEdge_IsTheRfcRange(int value, CloseCodeRange expected)
    {
        Assert.Equal(expected, new CloseCode(value).Range);
    }

    [Theory]
    [InlineData(999, false)]
    [InlineData(1000, true)]
    [InlineData(1003, true)]
    [InlineData(1004, false)]
    [InlineData(1005, false)]
    [InlineData(1006, false)]
    [InlineData(1007, true)]
    [InlineData(1012, true)]
    [InlineData(1013, true)]
    [InlineData(1014, true)]
    [InlineData(1015, false)]
    [InlineData(1016, false)]
    [InlineData(2999, false)]
    [InlineData(3000, true)]
    [InlineData(3999, true)]
    [InlineData(4000, true)]
    [InlineData(4999, true)]
    [InlineData(5000, false)]
    public void CanBeSent_ForEachKindOfCode_FollowsRfc6455(int value, bool expected)
    {
        Assert.Equal(expected, new CloseCode(value).CanBeSent);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(65536)]
    [InlineData(99999)]
    public void Constructor_ValueThatDoesNotFitTwoBytes_ThrowsNamingTheRange(int value)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new CloseCode(value));
        Assert.Contains("0-65535", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1006", 1006)]
    [InlineData("abnormal-closure", 1006)]
    [InlineData("AbnormalClosure", 1006)]
    [InlineData("Service Restart", 1012)]
    [InlineData("service_restart", 1012)]
    [InlineData(" 4321 ", 4321)]
    [InlineData("try-again-later", 1013)]
    public void TryParse_NumberOrName_FindsTheCode(string text, int expected)
    {
        Assert.True(CloseCode.TryParse(text, out var code));
        Assert.Equal(expected, code.Value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("foo")]
    [InlineData("99999")]
    [InlineData("-5")]
    [InlineData("10.5")]
    [InlineData(null)]
    public void TryParse_NotACode_ReturnsFalse(string? text)
    {
        Assert.False(CloseCode.TryParse(text, out _));
    }

    [Fact]
    public void WebSocketCloseStatus_RoundTrip_KeepsCodesTheEnumCannotName()
    {
        var status = CloseCode.ServiceRestart.ToWebSocketCloseStatus();
        Assert.Equal(1012, (int)status);
        Assert.Equal(CloseCode.ServiceRestart, CloseCode.FromWebSocketCloseStatus(status));
        Assert.Equal(CloseCode.NormalClosure, CloseCode.FromWebSocketCloseStatus(WebSocketCloseStatus.NormalClosure));
    }

    [Fact]
    public void ToString_IsTheInvariantNumber()
    {
        var previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("fr-FR");
            Assert.Equal("1012", CloseCode.ServiceRestart.ToString());
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }
}
