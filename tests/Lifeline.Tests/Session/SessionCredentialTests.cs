using Lifeline.Session;

namespace Lifeline.Tests.Session;

public class SessionCredentialTests
{
    [Fact]
    public void Create_TwoTokens_AreDifferentAndNotEmpty()
    {
        var a = ResumeToken.Create();
        var b = ResumeToken.Create();

        Assert.NotEqual(a, b);
        Assert.False(a.IsEmpty);
        Assert.True(default(ResumeToken).IsEmpty);
    }

    [Fact]
    public void DeriveSessionId_SameToken_GivesSameIdThatBelongsToIt()
    {
        var token = ResumeToken.Create();
        var copy = ResumeToken.FromBytes(Bytes(token));

        Assert.Equal(token.DeriveSessionId(), copy.DeriveSessionId());
        Assert.True(token.BelongsTo(token.DeriveSessionId()));
        Assert.False(ResumeToken.Create().BelongsTo(token.DeriveSessionId()));
        Assert.False(token.DeriveSessionId().IsEmpty);
    }

    [Fact]
    public void ComputeHash_MatchesOnlyItsToken()
    {
        var token = ResumeToken.Create();
        var hash = token.ComputeHash();

        Assert.True(hash.Matches(token));
        Assert.False(hash.Matches(ResumeToken.Create()));
    }

    [Fact]
    public void ToString_Token_NeverShowsTheBytes()
    {
        var token = ResumeToken.FromBytes(Enumerable.Repeat((byte)0xAB, 32).ToArray());

        Assert.DoesNotContain("AB", token.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("AB", token.ComputeHash().ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void SessionId_ToStringThenTryParse_RoundTrips()
    {
        var id = ResumeToken.Create().DeriveSessionId();

        var text = id.ToString();

        Assert.Equal(32, text.Length);
        Assert.True(SessionId.TryParse(text, out var parsed));
        Assert.Equal(id, parsed);
        Assert.True(SessionId.TryParse(text.ToUpperInvariant(), out _));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("0011")]
    [InlineData("zz0102030405060708090a0b0c0d0e0f")]
    public void SessionId_TryParseInvalid_ReturnsFalse(string? text)
    {
        Assert.False(SessionId.TryParse(text, out _));
    }

    [Fact]
    public void FromBytes_WrongLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => ResumeToken.FromBytes(new byte[31]));
        Assert.Throws<ArgumentException>(() => SessionId.FromBytes(new byte[17]));
    }

    [Fact]
    public void SequenceRange_FromBounds_GivesCountAndLast()
    {
        Assert.Equal(new SequenceRange(5, 5), SequenceRange.FromBounds(5, 9));
        Assert.True(SequenceRange.FromBounds(9, 5).IsEmpty);
        Assert.Equal("5-9 (5)", new SequenceRange(5, 5).ToString());
        Assert.Equal("none", SequenceRange.Empty.ToString());
    }

    private static byte[] Bytes(ResumeToken token)
    {
        var bytes = new byte[ResumeToken.Length];
        token.WriteTo(bytes);
        return bytes;
    }
}
