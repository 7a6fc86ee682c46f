using System.Globalization;

namespace Lifeline.Protocol;

/// <summary>
/// The server's retry hint carried in a close reason: a token <c>retry-after-ms=N</c> (N a whole number of
/// milliseconds) anywhere in the reason, separated from other text by a space, comma or semicolon. For example
/// <c>"Service Restart; retry-after-ms=2350"</c>. docs/protocol.md specifies it.
/// </summary>
public static class RetryHint
{
    /// <summary>The token's name including the equals sign.</summary>
    public const string TokenPrefix = "retry-after-ms=";

    /// <summary>The largest hint honoured (one day); larger values are read as this.</summary>
    public static readonly TimeSpan MaxValue = TimeSpan.FromDays(1);

    /// <summary>Finds the hint in a close reason.</summary>
    public static bool TryParse(string? reason, out TimeSpan delay)
    {
        delay = default;
        if (string.IsNullOrEmpty(reason))
        {
            return false;
        }

        var start = 0;
        while (true)
        {
            var at = reason.IndexOf(TokenPrefix, start, StringComparison.OrdinalIgnoreCase);
            if (at < 0)
            {
                return false;
            }

            start = at + TokenPrefix.Length;
            if (at > 0 && char.IsLetterOrDigit(reason[at - 1]))
            {
                continue; // part of another word, e.g. "xretry-after-ms="
            }

            var end = start;
            while (end < reason.Length && char.IsAsciiDigit(reason[end]))
            {
                end++;
            }

            if (end == start || (end < reason.Length && char.IsLetter(reason[end])))
            {
                continue;
            }

            // Leading zeros first, so "000000000002500" is 2,500 ms; more than ten digits left is more than a day anyway.
            var first = start;
            while (first < end - 1 && reason[first] == '0')
            {
                first++;
            }

            var digits = reason.AsSpan(first, Math.Min(end - first, 10));
            var milliseconds = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
            delay = TimeSpan.FromMilliseconds(Math.Min(milliseconds, MaxValue.TotalMilliseconds));
            return true;
        }
    }

    /// <summary>Formats the token for a delay, e.g. "retry-after-ms=2350".</summary>
    public static string Format(TimeSpan delay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        return TokenPrefix + ((long)Math.Min(delay.TotalMilliseconds, MaxValue.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Builds a reason "text; retry-after-ms=N" that fits the 123-byte limit (the text is shortened, never the token).</summary>
    public static string AppendTo(string? text, TimeSpan delay)
    {
        var token = Format(delay);
        if (string.IsNullOrEmpty(text))
        {
            return token;
        }

        var room = CloseCodes.CloseReason.MaxByteCount - token.Length - 2;
        return $"{CloseCodes.CloseReason.Truncate(text, Math.Max(0, room))}; {token}";
    }
}
