using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Lifeline.Session;

/// <summary>
/// The 32-byte secret that lets a client resume its session (256 bits from <see cref="RandomNumberGenerator"/>).
/// It travels only inside session frames (never in a URL), is compared in constant time, and a server stores only
/// its hash (<see cref="ComputeHash"/>).
/// </summary>
/// <remarks>
/// <see cref="ToString"/> never shows the bytes, so a token cannot leak into a log by accident. Immutable and thread-safe.
/// </remarks>
public readonly struct ResumeToken : IEquatable<ResumeToken>
{
    /// <summary>The length of a token in bytes.</summary>
    public const int Length = 32;

    private readonly Bytes32 _bytes;

    private ResumeToken(Bytes32 bytes) => _bytes = bytes;

    /// <summary>True for the default value (all zero bytes), which <see cref="Create"/> never returns in practice.</summary>
    public bool IsEmpty => ((ReadOnlySpan<byte>)_bytes).IndexOfAnyExcept((byte)0) < 0;

    /// <summary>Creates a new random token.</summary>
    public static ResumeToken Create()
    {
        var bytes = default(Bytes32);
        RandomNumberGenerator.Fill(bytes);
        return new ResumeToken(bytes);
    }

    /// <summary>Reads a token from exactly 32 bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not 32 bytes long.</exception>
    public static ResumeToken FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"A resume token is {Length} bytes; got {bytes.Length}.", nameof(bytes));
        }

        var copy = default(Bytes32);
        bytes.CopyTo(copy);
        return new ResumeToken(copy);
    }

    /// <summary>Writes the 32 bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 32 bytes.</exception>
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Length)
        {
            throw new ArgumentException($"A resume token needs {Length} bytes.", nameof(destination));
        }

        ((ReadOnlySpan<byte>)_bytes).CopyTo(destination);
    }

    /// <summary>SHA-256 of the token: what a server keeps (and a store persists) instead of the token itself.</summary>
    public ResumeTokenHash ComputeHash()
    {
        Span<byte> hash = stackalloc byte[ResumeTokenHash.Length];
        SHA256.HashData(_bytes, hash);
        return ResumeTokenHash.FromBytes(hash);
    }

    /// <summary>The session id that belongs to this token: the first 16 bytes of SHA-256 of the token.</summary>
    public SessionId DeriveSessionId()
    {
        Span<byte> hash = stackalloc byte[ResumeTokenHash.Length];
        SHA256.HashData(_bytes, hash);
        return SessionId.FromBytes(hash[..SessionId.Length]);
    }

    /// <summary>
    /// Whether <paramref name="sessionId"/> is the id derived from this token, compared in constant time.
    /// A false answer needs no session lookup, so it reveals nothing about which sessions exist.
    /// </summary>
    public bool BelongsTo(SessionId sessionId)
    {
        Span<byte> hash = stackalloc byte[ResumeTokenHash.Length];
        SHA256.HashData(_bytes, hash);
        Span<byte> claimed = stackalloc byte[SessionId.Length];
        sessionId.WriteTo(claimed);
        return CryptographicOperations.FixedTimeEquals(hash[..SessionId.Length], claimed);
    }

    /// <summary>Compares two tokens in constant time.</summary>
    public bool Equals(ResumeToken other) => CryptographicOperations.FixedTimeEquals(_bytes, other._bytes);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ResumeToken other && Equals(other);

    /// <summary>A hash code that does not reveal the token (all tokens share it; do not key dictionaries by tokens).</summary>
    public override int GetHashCode() => 0;

    /// <summary>A fixed text: the token's bytes are never formatted.</summary>
    public override string ToString() => "ResumeToken(redacted)";

    /// <summary>Compares two tokens in constant time.</summary>
    public static bool operator ==(ResumeToken left, ResumeToken right) => left.Equals(right);

    /// <summary>Compares two tokens in constant time.</summary>
    public static bool operator !=(ResumeToken left, ResumeToken right) => !left.Equals(right);

    [InlineArray(Length)]
    internal struct Bytes32
    {
        private byte _element0;
    }
}

/// <summary>SHA-256 of a <see cref="ResumeToken"/>: what a session store keeps, so a leaked store holds no usable token.</summary>
/// <remarks>Immutable and thread-safe.</remarks>
public readonly struct ResumeTokenHash : IEquatable<ResumeTokenHash>
{
    /// <summary>The length of a hash in bytes.</summary>
    public const int Length = 32;

    private readonly ResumeToken.Bytes32 _bytes;

    private ResumeTokenHash(ResumeToken.Bytes32 bytes) => _bytes = bytes;

    /// <summary>Reads a hash from exactly 32 bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not 32 bytes long.</exception>
    public static ResumeTokenHash FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"A resume token hash is {Length} bytes; got {bytes.Length}.", nameof(bytes));
        }

        var copy = default(ResumeToken.Bytes32);
        bytes.CopyTo(copy);
        return new ResumeTokenHash(copy);
    }

    /// <summary>Whether <paramref name="token"/> hashes to this value, compared in constant time.</summary>
    public bool Matches(ResumeToken token) => token.ComputeHash().Equals(this);

    /// <summary>Writes the 32 bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 32 bytes.</exception>
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Length)
        {
            throw new ArgumentException($"A resume token hash needs {Length} bytes.", nameof(destination));
        }

        ((ReadOnlySpan<byte>)_bytes).CopyTo(destination);
    }

    /// <summary>Compares two hashes in constant time.</summary>
    public bool Equals(ResumeTokenHash other) => CryptographicOperations.FixedTimeEquals(_bytes, other._bytes);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ResumeTokenHash other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => 0;

    /// <summary>A fixed text.</summary>
    public override string ToString() => "ResumeTokenHash(redacted)";

    /// <summary>Compares two hashes in constant time.</summary>
    public static bool operator ==(ResumeTokenHash left, ResumeTokenHash right) => left.Equals(right);

    /// <summary>Compares two hashes in constant time.</summary>
    public static bool operator !=(ResumeTokenHash left, ResumeTokenHash right) => !left.Equals(right);
}
