using System.Numerics;

namespace Lifeline.Session.Wire;

/// <summary>
/// Unsigned LEB128: seven bits per byte, least significant group first, the high bit set on every byte but the last.
/// At most 10 bytes for a 64-bit value.
/// </summary>
internal static class Varint
{
    /// <summary>The longest encoding of a 64-bit value.</summary>
    public const int MaxLength = 10;

    public static int GetLength(ulong value) => value < 0x80 ? 1 : (BitOperations.Log2(value) / 7) + 1;

    /// <summary>Writes <paramref name="value"/>; the destination must have room (<see cref="GetLength"/>).</summary>
    public static int Write(Span<byte> destination, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }

    /// <summary>Reads a value; never throws.</summary>
    public static SessionFrameError TryRead(ReadOnlySpan<byte> source, out ulong value, out int consumed)
    {
        value = 0;
        consumed = 0;
        var shift = 0;
        for (var i = 0; i < MaxLength; i++)
        {
            if (i >= source.Length)
            {
                return SessionFrameError.Truncated;
            }

            var b = source[i];
            if (i == MaxLength - 1 && b > 1)
            {
                return SessionFrameError.VarintOverflow; // the tenth byte may only carry bit 63
            }

            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                consumed = i + 1;
                return SessionFrameError.None;
            }

            shift += 7;
        }

        value = 0;
        return SessionFrameError.VarintOverflow;
    }
}
