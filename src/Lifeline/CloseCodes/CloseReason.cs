using System.Text;
using System.Text.Unicode;

namespace Lifeline.CloseCodes;

/// <summary>
/// Rules for the reason text of a Close frame: at most 123 bytes of valid UTF-8 (a control frame's
/// payload is at most 125 bytes, two of which hold the code).
/// </summary>
public static class CloseReason
{
    /// <summary>The largest reason, in UTF-8 bytes, a Close frame can carry.</summary>
    public const int MaxByteCount = 123;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Whether the bytes are valid UTF-8 of at most <see cref="MaxByteCount"/> bytes.</summary>
    public static bool IsValid(ReadOnlySpan<byte> utf8Reason) =>
        utf8Reason.Length <= MaxByteCount && Utf8.IsValid(utf8Reason);

    /// <summary>Whether the text encodes to at most <see cref="MaxByteCount"/> bytes of valid UTF-8 (no lone surrogates).</summary>
    public static bool IsValid(string? reason) => Validate(reason) is null;

    /// <summary>Explains why a reason is not valid, or returns null when it is.</summary>
    public static string? Validate(string? reason)
    {
        if (reason is null)
        {
            return null;
        }

        int byteCount;
        try
        {
            byteCount = StrictUtf8.GetByteCount(reason);
        }
        catch (EncoderFallbackException)
        {
            return "The close reason contains a lone surrogate and cannot be encoded as UTF-8.";
        }

        return byteCount > MaxByteCount
            ? $"The close reason is {byteCount} bytes of UTF-8; a Close frame allows at most {MaxByteCount}. Shorten it or use CloseReason.Truncate."
            : null;
    }

    /// <summary>Throws <see cref="ArgumentException"/> with a clear message when the reason is not valid.</summary>
    public static void ThrowIfInvalid(string? reason, string paramName = "reason")
    {
        if (Validate(reason) is { } problem)
        {
            throw new ArgumentException(problem, paramName);
        }
    }

    /// <summary>
    /// Shortens a reason to at most <paramref name="maxBytes"/> bytes of UTF-8 without splitting a character
    /// (a surrogate pair or a multi-byte sequence is kept whole or dropped whole). Lone surrogates become U+FFFD.
    /// </summary>
    public static string Truncate(string? reason, int maxBytes = MaxByteCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        if (string.IsNullOrEmpty(reason))
        {
            return string.Empty;
        }

        var builder = new StringBuilder(reason.Length);
        var used = 0;
        foreach (var rune in EnumerateRunes(reason))
        {
            var size = rune.Utf8SequenceLength;
            if (used + size > maxBytes)
            {
                break;
            }

            builder.Append(rune.ToString());
            used += size;
        }

        return builder.ToString();
    }

    private static IEnumerable<Rune> EnumerateRunes(string text)
    {
        var index = 0;
        while (index < text.Length)
        {
            // Invalid sequences (lone surrogates) decode as U+FFFD, which is valid UTF-8.
            Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out var consumed);
            yield return rune;
            index += consumed;
        }
    }
}
