using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Lifeline.Cli;

/// <summary>
/// Numeric options that check their range while parsing, so that a bad value gets the usual <c>error:</c> and
/// <c>usage:</c> lines and exit code 2, worded the same in every command (never a .NET type name, never a crash).
/// </summary>
internal static class NumberOptions
{
    /// <summary>A number of seconds: 0 (when allowed), or from a millisecond up to <paramref name="max"/>.</summary>
    public static Option<double> Seconds(string name, string description, double defaultValue, bool allowZero = false,
        double max = CommonOptions.OneDaySeconds, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = result => ParseSeconds(result, name, allowZero, max) ?? defaultValue,
        };

    /// <summary>An optional number of seconds (absent means "not set").</summary>
    public static Option<double?> OptionalSeconds(string name, string description, bool allowZero = false,
        double max = CommonOptions.OneDaySeconds, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            CustomParser = result => ParseSeconds(result, name, allowZero, max),
        };

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static Option<long> Whole(string name, string description, long defaultValue, long min, long max, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = result => ParseWhole(result, name, min, max) ?? defaultValue,
        };

    /// <summary>An optional whole number (absent means "not set").</summary>
    public static Option<long?> OptionalWhole(string name, string description, long min, long max, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            CustomParser = result => ParseWhole(result, name, min, max),
        };

    private static double? ParseSeconds(ArgumentResult result, string name, bool allowZero, double max)
    {
        if (result.Tokens.Count == 0)
        {
            return null;
        }

        var text = result.Tokens[^1].Value;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && CommonOptions.IsSeconds(value, allowZero, max))
        {
            return value;
        }

        result.AddError(CommonOptions.SecondsMessage(name, text, allowZero, max));
        return null;
    }

    private static long? ParseWhole(ArgumentResult result, string name, long min, long max)
    {
        if (result.Tokens.Count == 0)
        {
            return null;
        }

        var text = result.Tokens[^1].Value;
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        result.AddError(CommonOptions.CountMessage(name, text, min, max));
        return null;
    }
}
