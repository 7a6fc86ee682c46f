using Lifeline.Session.Wire;

namespace Lifeline.Tests.Session;

public class VarintTests
{
    [Theory]
    [InlineData(0UL, "00")]
    [InlineData(127UL, "7F")]
    [InlineData(128UL, "8001")]
    [InlineData(300UL, "AC02")]
    [InlineData(120_000UL, "C0A907")]
    [InlineData(long.MaxValue, "FFFFFFFFFFFFFFFF7F")]
    [InlineData(ulong.MaxValue, "FFFFFFFFFFFFFFFFFF01")]
    public void Write_KnownValues_GivesDocumentedBytesAndReadsBack(ulong value, string hex)
    {
        var buffer = new byte[Varint.MaxLength];

        var written = Varint.Write(buffer, value);

        Assert.Equal(hex, Convert.ToHexString(buffer, 0, written));
        Assert.Equal(written, Varint.GetLength(value));
        Assert.Equal(SessionFrameError.None, Varint.TryRead(buffer.AsSpan(0, written), out var read, out var consumed));
        Assert.Equal(value, read);
        Assert.Equal(written, consumed);
    }

    [Fact]
    public void GetLength_EveryPowerOfTwo_MatchesWrite()
    {
        var buffer = new byte[Varint.MaxLength];
        for (var bit = 0; bit < 64; bit++)
        {
            foreach (var value in new[] { (1UL << bit) - 1, 1UL << bit })
            {
                Assert.Equal(Varint.Write(buffer, value), Varint.GetLength(value));
            }
        }
    }
}

public class SessionProtocolTests
{
    [Fact]
    public void Constants_MatchTheSpecification()
    {
        Assert.Equal("lifeline.v1", SessionProtocol.SubProtocol);
        Assert.Equal(4000, SessionProtocol.HandshakeTimeout.Value);
        Assert.Equal(4001, SessionProtocol.SessionTakenOver.Value);
        Assert.Equal(TimeSpan.FromMinutes(2), SessionProtocol.DefaultResumeWindow);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(SessionProtocol.RefusedReason) <= 123);
    }
}
