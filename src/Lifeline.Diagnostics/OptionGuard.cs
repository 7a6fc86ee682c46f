using System.Runtime.CompilerServices;

namespace Lifeline.Diagnostics;

/// <summary>Checks for option setters: every failure names the property and the accepted range.</summary>
internal static class OptionGuard
{
    /// <summary>The longest a timer waits (about 49.7 days): a longer duration made the timer that uses it throw.</summary>
    public static readonly TimeSpan LongestTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    public static TimeSpan Positive(TimeSpan value, [CallerMemberName] string name = "") =>
        value > TimeSpan.Zero && value <= LongestTimer ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive and at most {Longest}.");

    public static TimeSpan NotNegative(TimeSpan value, [CallerMemberName] string name = "") =>
        value >= TimeSpan.Zero && value <= LongestTimer ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be zero or more and at most {Longest}.");

    private const string Longest = "49 days (the longest a timer waits)";

    public static int InRange(int value, int minimum, int maximum, [CallerMemberName] string name = "") =>
        value >= minimum && value <= maximum ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be {minimum}-{maximum}.");

    /// <summary>A header value for the upgrade request: a CR or LF would end the header and start one of the caller's making.</summary>
    public static string? HeaderValue(string? value, [CallerMemberName] string name = "") =>
        value is null ? null
            : value.Any(char.IsControl) ? throw new ArgumentException($"{name} must not contain control characters such as CR or LF.", name)
            : !System.Text.Ascii.IsValid(value) ? throw new ArgumentException($"{name} must be ASCII, as a header of the upgrade request is (the handshake would send '?' for any other character).", name)
            : value;

    /// <summary>Subprotocol names: HTTP tokens (RFC 6455 section 4.1), which is also what keeps the header well formed.</summary>
    public static IReadOnlyList<string> SubProtocols(IReadOnlyList<string> value, [CallerMemberName] string name = "")
    {
        ArgumentNullException.ThrowIfNull(value, name);
        foreach (var protocol in value)
        {
            if (!IsToken(protocol))
            {
                throw new ArgumentException($"{name}: '{protocol}' is not a subprotocol name (letters, digits and !#$%&'*+-.^_`|~ only, no spaces or commas).", name);
            }
        }

        return [.. value];
    }

    public static bool IsToken(string? text) =>
        !string.IsNullOrEmpty(text) && text.All(c => c is > ' ' and < (char)127 && !"\"(),/:;<=>?@[\\]{}".Contains(c));

    public static Uri WebSocketUri(Uri value, [CallerMemberName] string name = "")
    {
        ArgumentNullException.ThrowIfNull(value, name);
        return value.IsAbsoluteUri && (value.Scheme == "ws" || value.Scheme == "wss") && !string.IsNullOrEmpty(value.Host) ? value
            : throw new ArgumentException($"{name} must be an absolute ws:// or wss:// address, not '{value}'.", name);
    }
}
