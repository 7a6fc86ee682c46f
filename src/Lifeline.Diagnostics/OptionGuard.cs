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

    public static Uri WebSocketUri(Uri value, [CallerMemberName] string name = "")
    {
        ArgumentNullException.ThrowIfNull(value, name);
        return value.IsAbsoluteUri && (value.Scheme == "ws" || value.Scheme == "wss") && !string.IsNullOrEmpty(value.Host) ? value
            : throw new ArgumentException($"{name} must be an absolute ws:// or wss:// address, not '{value}'.", name);
    }
}
