using System.Runtime.CompilerServices;

namespace Lifeline;

/// <summary>Checks for option setters: every failure names the property and the accepted range.</summary>
internal static class OptionGuard
{
    /// <summary>
    /// The longest a timer waits (about 49.7 days). Every duration option is at most this: a longer one made the timer or
    /// cancellation source that uses it throw, far from the setting (a client closed at once, "before it could connect").
    /// </summary>
    public static readonly TimeSpan LongestTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>An HTTP token (RFC 9110), as a subprotocol name must be.</summary>
    public static bool IsToken(string? text) =>
        !string.IsNullOrEmpty(text) && text.All(c => c is > ' ' and < (char)127 && !"\"(),/:;<=>?@[\\]{}".Contains(c, StringComparison.Ordinal));

    public static TimeSpan Positive(TimeSpan value, [CallerMemberName] string name = "") =>
        value > TimeSpan.Zero && value <= LongestTimer ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive and at most {Longest}.");

    public static TimeSpan NotNegative(TimeSpan value, [CallerMemberName] string name = "") =>
        value >= TimeSpan.Zero && value <= LongestTimer ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be zero or more and at most {Longest}.");

    public static TimeSpan? PositiveOrNull(TimeSpan? value, string meaningOfNull, [CallerMemberName] string name = "") =>
        value is null || (value > TimeSpan.Zero && value <= LongestTimer) ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive and at most {Longest}, or null for {meaningOfNull}.");

    /// <summary>For keep-alive timeouts: zero, positive (at most <see cref="LongestTimer"/>) or <see cref="Timeout.InfiniteTimeSpan"/>.</summary>
    public static TimeSpan NotNegativeOrInfinite(TimeSpan value, [CallerMemberName] string name = "") =>
        (value >= TimeSpan.Zero && value <= LongestTimer) || value == Timeout.InfiniteTimeSpan ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be zero, positive up to {Longest}, or infinite (Timeout.InfiniteTimeSpan).");

    private const string Longest = "49 days (the longest a timer waits)";

    public static int AtLeast(int value, int minimum, [CallerMemberName] string name = "") =>
        value >= minimum ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least {minimum}.");

    public static long AtLeast(long value, long minimum, [CallerMemberName] string name = "") =>
        value >= minimum ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least {minimum}.");

    public static int? AtLeastOrNull(int? value, int minimum, [CallerMemberName] string name = "") =>
        value is null || value >= minimum ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least {minimum}, or null for no limit.");
}
