using System.Runtime.CompilerServices;

namespace Lifeline.Diagnostics;

/// <summary>Checks for option setters: every failure names the property and the accepted range.</summary>
internal static class OptionGuard
{
    public static TimeSpan Positive(TimeSpan value, [CallerMemberName] string name = "") =>
        value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");

    public static TimeSpan NotNegative(TimeSpan value, [CallerMemberName] string name = "") =>
        value >= TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be zero or more.");

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
