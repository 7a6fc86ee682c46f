using System.Runtime.CompilerServices;

namespace Lifeline;

/// <summary>Checks for option setters: every failure names the property and the accepted range.</summary>
internal static class OptionGuard
{
    public static TimeSpan Positive(TimeSpan value, [CallerMemberName] string name = "") =>
        value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");

    public static TimeSpan NotNegative(TimeSpan value, [CallerMemberName] string name = "") =>
        value >= TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be zero or more.");

    public static TimeSpan? PositiveOrNull(TimeSpan? value, string meaningOfNull, [CallerMemberName] string name = "") =>
        value is null || value > TimeSpan.Zero ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive, or null for {meaningOfNull}.");

    /// <summary>For keep-alive timeouts: zero, positive or <see cref="Timeout.InfiniteTimeSpan"/>.</summary>
    public static TimeSpan NotNegativeOrInfinite(TimeSpan value, [CallerMemberName] string name = "") =>
        value >= TimeSpan.Zero || value == Timeout.InfiniteTimeSpan ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be zero, positive or infinite.");

    public static int AtLeast(int value, int minimum, [CallerMemberName] string name = "") =>
        value >= minimum ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least {minimum}.");

    public static long AtLeast(long value, long minimum, [CallerMemberName] string name = "") =>
        value >= minimum ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least {minimum}.");

    public static int? AtLeastOrNull(int? value, int minimum, [CallerMemberName] string name = "") =>
        value is null || value >= minimum ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least {minimum}, or null for no limit.");
}
