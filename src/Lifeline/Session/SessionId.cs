using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Lifeline.Session;

/// <summary>
/// The 16-byte identifier of a lossless session. It is the first 16 bytes of SHA-256 of the session's
/// <see cref="ResumeToken"/> (<see cref="ResumeToken.DeriveSessionId"/>), so it is as unpredictable as the token's
/// 256 random bits, and a server can tell that an id and a token do not belong together without looking the session up.
/// </summary>
/// <remarks>
/// An id is not a secret: it may appear in logs (formatted as 32 lowercase hex digits). Possession of the id alone
/// grants nothing; a resume needs the token. Immutable and thread-safe.
/// </remarks>
public readonly struct SessionId : IEquatable<SessionId>, ISpanFormattable
{
    /// <summary>The length of an id in bytes.</summary>
    public const int Length = 16;

    private readonly ulong _high;
    private readonly ulong _low;

    private SessionId(ulong high, ulong low)
    {
        _high = high;
        _low = low;
    }

    /// <summary>True for the default value (all zero bytes), which no real session has.</summary>
    public bool IsEmpty => _high == 0 && _low == 0;

    /// <summary>Reads an id from exactly 16 bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not 16 bytes long.</exception>
    public static SessionId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"A session id is {Length} bytes; got {bytes.Length}.", nameof(bytes));
        }

        return new SessionId(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
    }

    /// <summary>Parses the 32 hex digits that <see cref="ToString()"/> writes (either case).</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out SessionId id)
    {
        id = default;
        Span<byte> bytes = stackalloc byte[Length];
        if (text is null || text.Length != Length * 2 || Convert.FromHexString(text, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != Length)
        {
            return false;
        }

        id = FromBytes(bytes);
        return true;
    }

    /// <summary>Writes the 16 bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 16 bytes.</exception>
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Length)
        {
            throw new ArgumentException($"A session id needs {Length} bytes.", nameof(destination));
        }

        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
    }

    /// <inheritdoc />
    public bool Equals(SessionId other) => _high == other._high && _low == other._low;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is SessionId other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_high, _low);

    /// <summary>The id as 32 lowercase hex digits.</summary>
    public override string ToString() => string.Create(Length * 2, this, static (chars, id) => id.TryFormat(chars, out _, default, null));

    /// <inheritdoc />
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <inheritdoc />
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        charsWritten = 0;
        if (destination.Length < Length * 2)
        {
            return false;
        }

        _high.TryFormat(destination, out _, "x16", CultureInfo.InvariantCulture);
        _low.TryFormat(destination[16..], out _, "x16", CultureInfo.InvariantCulture);
        charsWritten = Length * 2;
        return true;
    }

    /// <summary>Compares two ids.</summary>
    public static bool operator ==(SessionId left, SessionId right) => left.Equals(right);

    /// <summary>Compares two ids.</summary>
    public static bool operator !=(SessionId left, SessionId right) => !left.Equals(right);
}
