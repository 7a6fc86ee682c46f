using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Lifeline.CloseCodes;

namespace Lifeline.Cli;

/// <summary>Options and argument parsing shared by several commands; every range error is worded the same way.</summary>
internal static partial class CommonOptions
{
    public const double OneDaySeconds = 86_400;

    public static readonly string[] Languages = ["en", "fr"];
    public static readonly string[] Formats = ["text", "markdown", "json"];

    public static Option<string> Language() => OneOf(new Option<string>("--lang")
    {
        Description = "Language of the texts: en or fr.",
        DefaultValueFactory = _ => "en",
    }, Languages);

    public static Option<string> Format() => OneOf(new Option<string>("--format", "-f")
    {
        Description = "Output format: text, markdown or json.",
        DefaultValueFactory = _ => "text",
    }, Formats);

    /// <summary>
    /// Accepts only <paramref name="values"/>, with a one-line error that names the option and its values (the
    /// parser's own, from AcceptOnlyFromAmong, runs over several lines with tabs).
    /// </summary>
    private static Option<string> OneOf(Option<string> option, string[] values)
    {
        var allowed = values.Length == 1 ? values[0] : $"{string.Join(", ", values[..^1])} or {values[^1]}";
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { } value && !values.Contains(value, StringComparer.Ordinal))
            {
                result.AddError($"{option.Name} must be {allowed}, not '{value}'.");
            }
        });
        option.CompletionSources.Add(values);
        return option;
    }

    public static Option<bool> Json(string description) => new("--json", "-j") { Description = description };

    public static CultureInfo Culture(string language) => CultureInfo.GetCultureInfo(language);

    /// <summary>The longest DNS name, written without its final dot (RFC 1035: 255 bytes on the wire).</summary>
    public const int MaxHostNameLength = 253;

    /// <summary>Checks a ws:// or wss:// URL from the command line.</summary>
    public static Uri ParseWebSocketUrl(string text, string command)
    {
        CheckPortInUrl(text, text, command, allowZero: false); // a server to reach: port 0 would silently mean 80 or 443
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("ws" or "wss") || string.IsNullOrEmpty(uri.Host))
        {
            throw new UsageException($"'{text}' is not a WebSocket URL; use ws://host:port/path or wss://host:port/path.", command);
        }

        // A longer name can never resolve, and the resolver throws on it rather than failing the lookup.
        var host = uri.IdnHost.TrimEnd('.');
        if (uri.HostNameType is not (UriHostNameType.IPv4 or UriHostNameType.IPv6) && host.Length > MaxHostNameLength)
        {
            throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"the host name in '{text}' is {host.Length} characters long; a DNS name has at most {MaxHostNameLength}."), command);
        }

        return uri;
    }

    /// <summary>Rejects a URL whose port is out of range with the same words as every other port; 0 (any free port) only where a server listens.</summary>
    public static void CheckPortInUrl(string text, string what, string command, bool allowZero)
    {
        var match = UrlPort().Match(text);
        if (match.Success && !IsPort(match.Groups[1].Value, allowZero))
        {
            throw new UsageException(PortMessage(what, match.Groups[1].Value, allowZero: false), command); // one wording everywhere: 0 is serve's special case
        }
    }

    public static bool IsPort(string text, bool allowZero) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535 && (allowZero || port > 0);

    public static string PortMessage(string what, string port, bool allowZero) =>
        $"{what}: the port must be a whole number from {(allowZero ? 0 : 1)} to 65535, not {port}.";

    /// <summary>
    /// The shortest duration other than 0 an option takes: a millisecond. Shorter ones round to zero ticks (below 100 ns)
    /// or to nothing a timer can wait, and the settings refused them with a message that named no option.
    /// </summary>
    public const double MinPositiveSeconds = 0.001;

    /// <summary>Whether a number of seconds is in range: finite, 0 only when allowed, else from a millisecond to <paramref name="max"/>.</summary>
    public static bool IsSeconds(double value, bool allowZero, double max) =>
        double.IsFinite(value) && (value == 0 ? allowZero : value >= MinPositiveSeconds && value <= max);

    /// <summary>Checks a number of seconds: finite, zero only when allowed, else from a millisecond to <paramref name="max"/>.</summary>
    public static TimeSpan Seconds(double value, string option, string command, bool allowZero = false, double max = OneDaySeconds)
    {
        if (!IsSeconds(value, allowZero, max))
        {
            throw new UsageException(SecondsMessage(option, value.ToString(CultureInfo.InvariantCulture), allowZero, max), command);
        }

        return TimeSpan.FromSeconds(value);
    }

    public static string SecondsMessage(string option, string value, bool allowZero, double max = OneDaySeconds) =>
        $"{option} must be a number of seconds{(allowZero ? ": 0, or from 0.001 to " : " from 0.001 to ")}{max.ToString(CultureInfo.InvariantCulture)}{(max == OneDaySeconds ? " (one day)" : string.Empty)}, not {value}.";

    /// <summary>Checks a number of seconds. Kept for the commands written before <see cref="Seconds"/>.</summary>
    public static TimeSpan PositiveSeconds(double value, string option, string command, bool allowZero = false) =>
        Seconds(value, option, command, allowZero);

    /// <summary>Checks a whole number against its range.</summary>
    public static long Count(long value, string option, string command, long min, long max)
    {
        if (value < min || value > max)
        {
            throw new UsageException(CountMessage(option, value.ToString(CultureInfo.InvariantCulture), min, max), command);
        }

        return value;
    }

    public static string CountMessage(string option, string value, long min, long max) =>
        string.Create(CultureInfo.InvariantCulture, $"{option} must be a whole number from {min} to {max}, not {value}.");

    /// <summary>Turns "1006" or "abnormal-closure" into a code, or explains what is wrong.</summary>
    /// <summary>A value for a header of the upgrade request (--origin, --header): no CR, LF or other control character.</summary>
    public static string? HeaderValue(string? value, string option, string command) =>
        value is null ? null
            : value.Any(char.IsControl) ? throw new UsageException($"{option} must not contain control characters such as a line break: they would end the header.", command)
            : !Ascii.IsValid(value) ? throw new UsageException($"{option} must be ASCII, as a header of the upgrade request is (an address with other letters goes in its punycode form, xn--...).", command)
            : value;

    /// <summary>Subprotocol names (--subprotocol): HTTP tokens, as RFC 6455 asks, each once (--session offers lifeline.v1 itself).</summary>
    public static string[] SubProtocols(string[] values, string command, bool session = false)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var value in values)
        {
            if (!Lifeline.Diagnostics.OptionGuard.IsToken(value))
            {
                throw new UsageException($"--subprotocol '{value}' is not a subprotocol name: letters, digits and !#$%&'*+-.^_`|~ only, no spaces or commas (repeat the option to offer several).", command);
            }

            if (session && value.Equals(Lifeline.Session.Wire.SessionProtocol.SubProtocol, StringComparison.OrdinalIgnoreCase))
            {
                throw new UsageException($"--subprotocol '{value}': --session offers it already; drop this --subprotocol.", command);
            }

            if (!seen.Add(value))
            {
                throw new UsageException($"--subprotocol '{value}' is given twice (names are compared without case); offer each once.", command);
            }
        }

        return values;
    }

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

    [GeneratedRegex(@"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^/@]*@)?(?:\[[^\]]*\]|[^/:?#]*):(\d+)(?:[/?#]|$)")]
    private static partial Regex UrlPort();
}
