using System.Globalization;
using Lifeline.CloseCodes;

namespace Lifeline.Tests.CloseCodes;

public class CloseCodeCatalogTests
{
    private static readonly CultureInfo English = CultureInfo.GetCultureInfo("en");
    private static readonly CultureInfo French = CultureInfo.GetCultureInfo("fr");

    public static TheoryData<int, string, string, CloseReaction> Registered => new()
    {
        { 1000, "normal-closure", "Normal Closure", CloseReaction.Stop },
        { 1001, "going-away", "Going Away", CloseReaction.ReconnectSoon },
        { 1002, "protocol-error", "Protocol Error", CloseReaction.Stop },
        { 1003, "unsupported-data", "Unsupported Data", CloseReaction.Stop },
        { 1004, "reserved", "Reserved", CloseReaction.ReconnectWithBackoff },
        { 1005, "no-status-received", "No Status Received", CloseReaction.ReconnectWithBackoff },
        { 1006, "abnormal-closure", "Abnormal Closure", CloseReaction.ReconnectWithBackoff },
        { 1007, "invalid-payload-data", "Invalid Frame Payload Data", CloseReaction.Stop },
        { 1008, "policy-violation", "Policy Violation", CloseReaction.Stop },
        { 1009, "message-too-big", "Message Too Big", CloseReaction.Stop },
        { 1010, "mandatory-extension", "Mandatory Extension", CloseReaction.Stop },
        { 1011, "internal-error", "Internal Error", CloseReaction.ReconnectWithBackoff },
        { 1012, "service-restart", "Service Restart", CloseReaction.ReconnectSoon },
        { 1013, "try-again-later", "Try Again Later", CloseReaction.ReconnectWithBackoff },
        { 1014, "bad-gateway", "Bad Gateway", CloseReaction.ReconnectWithBackoff },
        { 1015, "tls-handshake-failure", "TLS Handshake Failure", CloseReaction.Stop },
        { 3000, "unauthorized", "Unauthorized", CloseReaction.Stop },
        { 3003, "forbidden", "Forbidden", CloseReaction.Stop },
        { 3008, "timeout", "Timeout", CloseReaction.ReconnectWithBackoff },
    };

    [Theory]
    [MemberData(nameof(Registered))]
    public void Get_RegisteredCode_HasNameSlugReactionAndTextsInBothLanguages(int value, string slug, string name, CloseReaction reaction)
    {
        var info = CloseCodeCatalog.Get(new CloseCode(value));

        Assert.True(info.IsRegistered);
        Assert.Equal(slug, info.Slug);
        Assert.Equal(name, info.GetName(English));
        Assert.Equal(reaction, info.DefaultReaction);
        foreach (var culture in new[] { English, French })
        {
            Assert.False(string.IsNullOrWhiteSpace(info.GetMeaning(culture)));
            Assert.False(string.IsNullOrWhiteSpace(info.GetWhenYouSeeIt(culture)));
            Assert.False(string.IsNullOrWhiteSpace(info.GetHowToResolve(culture)));
        }

        // The French texts are real translations, not the English fallback.
        Assert.NotEqual(info.GetMeaning(English), info.GetMeaning(French));
        Assert.Same(info, CloseCodeCatalog.FindByName(slug));
    }

    [Fact]
    public void Registered_ListsExactlyTheRfcAndIanaCodes_InOrder()
    {
        var values = CloseCodeCatalog.Registered.Select(info => info.Code.Value).ToArray();
        int[] expected = [.. Enumerable.Range(1000, 16), 3000, 3003, 3008];
        Assert.Equal(expected, values);
    }

    [Theory]
    [InlineData(1005)]
    [InlineData(1006)]
    [InlineData(1015)]
    public void Get_ObservedOnlyCode_CannotBeSent(int value)
    {
        var info = CloseCodeCatalog.Get(new CloseCode(value));
        Assert.True(info.IsObservedOnly);
        Assert.False(info.CanBeSent);
    }

    [Theory]
    [InlineData(1016, CloseCodeRange.Protocol, CloseReaction.ReconnectWithBackoff)]
    [InlineData(2999, CloseCodeRange.Protocol, CloseReaction.ReconnectWithBackoff)]
    [InlineData(3500, CloseCodeRange.Registered, CloseReaction.ApplicationDecides)]
    [InlineData(4321, CloseCodeRange.Private, CloseReaction.ApplicationDecides)]
    [InlineData(999, CloseCodeRange.NotUsed, CloseReaction.Stop)]
    [InlineData(5000, CloseCodeRange.Invalid, CloseReaction.Stop)]
    public void Get_UnassignedCode_IsExplainedByItsRange(int value, CloseCodeRange range, CloseReaction reaction)
    {
        var info = CloseCodeCatalog.Get(new CloseCode(value));

        Assert.False(info.IsRegistered);
        Assert.Equal("unassigned", info.Slug);
        Assert.Equal(range, info.Range);
        Assert.Equal(reaction, info.DefaultReaction);
        Assert.Equal("Unassigned", info.GetName(English));
        Assert.Equal("Non attribué", info.GetName(French));
        Assert.Contains(value switch { < 1000 => "0-999", < 3000 => "2999", < 4000 => "3000", < 5000 => "4000", _ => "5000" },
            info.GetRangeName(English), StringComparison.Ordinal);
    }

    [Fact]
    public void FindByName_UnknownName_ReturnsNull()
    {
        Assert.Null(CloseCodeCatalog.FindByName("no-such-code"));
    }
}
