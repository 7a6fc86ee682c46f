using Lifeline.Session.Wire;

namespace Lifeline.Tests.Session;

public class PayloadMoveTests
{
    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(3, 1)]
    [InlineData(4, 32)] // a small session message: the ranges overlap
    [InlineData(7, 7)]
    [InlineData(2, 9)]
    [InlineData(11, 100)]
    [InlineData(19, 512)]
    [InlineData(5, 513)] // past the managed copy: the runtime's memmove
    [InlineData(6, 4096)]
    public void ToFront_MovesExactlyThePayload_AndLeavesTheRestAlone(int from, int length)
    {
        var buffer = new byte[from + length + 8];
        for (var i = 0; i < buffer.Length; i++)
        {
            buffer[i] = (byte)(i * 7 + 3);
        }

        var expected = (byte[])buffer.Clone();
        Array.Copy(buffer, from, expected, 0, length); // Array.Copy handles the overlap as memmove does

        PayloadMove.ToFront(buffer, from, length);

        Assert.Equal(expected, buffer);
    }

    [Theory]
    [InlineData(-1, 1)]
    [InlineData(0, 11)]
    [InlineData(11, 0)]
    [InlineData(5, 6)]
    [InlineData(1, -1)]
    public void ToFront_RangeOutsideTheBuffer_Throws(int from, int length)
    {
        var buffer = new byte[10];
        Assert.Throws<ArgumentOutOfRangeException>(() => PayloadMove.ToFront(buffer, from, length));
    }
}
