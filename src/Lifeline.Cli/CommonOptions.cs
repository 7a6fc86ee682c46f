using System.CommandLine;
using System.Globalization;
using Lifeline.CloseCodes;

namespace Lifeline.Cli;

/// <summary>Options and argument parsing shared by several commands.</summary>
internal static class CommonOptions
{
    public static readonly string[] Languages = ["en", "fr"];
    public static readonly string[] Formats = ["text", "markdown", "json"];

    public static Option<string> Language() => new Option<string>("--lang")
    {
        Description = "Language of the texts: en or fr.",
        DefaultValueFactory = _ => "en",
    }.AcceptOnlyFromAmong(Languages);

    public static Option<string> Format() => new Option<string>("--format")
    {
        Description = "Output format: text, markdown or json.",
        DefaultValueFactory = _ => "text",
    }.AcceptOnlyFromAmong(Formats);

    public static CultureInfo Culture(string language) => CultureInfo.GetCultureInfo(language);

    /// <summary>Checks a ws:// or wss:// URL from the command line.</summary>
    public static Uri ParseWebSocketUrl(string text, string command)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("ws" or "wss") || string.IsNullOrEmpty(uri.Host))
        {
            throw new UsageException($"'{text}' is not a WebSocket URL; use ws://host:port/path or wss://host:port/path.", command);
        }

        return uri;
    }

    /// <summary>Checks a number of seconds from the command line.</summary>
    public static TimeSpan PositiveSeconds(double value, string option, string command, bool allowZero = false)
    {
        if (!double.IsFinite(value) || value < 0 || (!allowZero && value == 0) || value > TimeSpan.FromDays(1).TotalSeconds)
        {
            throw new UsageException(
                $"{option} must be a {(allowZero ? "non-negative" : "positive")} number of seconds (at most one day), not {value.ToString(CultureInfo.InvariantCulture)}.",
                command);
        }

        return TimeSpan.FromSeconds(value);
    }

    /// <summary>Turns "1006" or "abnormal-closure" into a code, or explains what is wrong.</summary>
    public static CloseCode ParseCode(string text, string command)
    {
        if (CloseCode.TryParse(text, out var code))
        {
            return code;
        }

        var what = int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out _) || long.TryParse(text, out _)
            ? $"'{text}' is not a close code: a Close frame carries a number from 0 to {CloseCode.MaxWireValue} (registered codes are 1000-1015 and 3000-4999)."
            : $"'{text}' is neither a close code number nor a known name such as abnormal-closure or service-restart.";
        throw new UsageException($"{what} Run 'lifeline codes' to list every registered code.", command);
    }
}
