using System.Runtime.CompilerServices;

namespace Lifeline.Redis;

internal static class Guard
{
    public static TimeSpan Between(TimeSpan value, TimeSpan minimum, TimeSpan maximum, [CallerMemberName] string name = "") =>
        value >= minimum && value <= maximum ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be between {minimum} and {maximum}.");

    public static int Between(int value, int minimum, int maximum, [CallerMemberName] string name = "") =>
        value >= minimum && value <= maximum ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be between {minimum} and {maximum}.");

    public static long Between(long value, long minimum, long maximum, [CallerMemberName] string name = "") =>
        value >= minimum && value <= maximum ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be between {minimum} and {maximum}.");

    public static string NotBlank(string? value, [CallerMemberName] string name = "") =>
        !string.IsNullOrWhiteSpace(value) ? value : throw new ArgumentException($"{name} must not be empty.", name);
}
