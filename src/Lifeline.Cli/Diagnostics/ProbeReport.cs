using System.Globalization;
using Lifeline.CloseCodes;

namespace Lifeline.Cli.Diagnostics;

/// <summary>Everything <c>lifeline probe</c> found out, in the shape of its JSON output.</summary>
internal sealed record ProbeReport
{
    public required string Url { get; init; }

    public string[] Addresses { get; init; } = [];

    public string? Remote { get; init; }

    public double? DnsMs { get; init; }

    public double? TcpMs { get; init; }

    public double? TlsMs { get; init; }

    public double? UpgradeMs { get; init; }

    public int? Status { get; init; }

    public Dictionary<string, string> Headers { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    public string? Subprotocol { get; init; }

    public string? Extensions { get; init; }

    public double[] PingsMs { get; init; } = [];

    public int PingsLost { get; init; }

    public string? FailedStage { get; init; }

    public string? Cause { get; init; }

    public string? BodyStart { get; init; }

    public EndReport? End { get; init; }

    public static double Ms(TimeSpan value) => Math.Round(value.TotalMilliseconds, 3);
}

/// <summary>How the probed connection ended, with the catalogue's explanation of the code a client would report.</summary>
internal sealed record EndReport(string Kind, double AfterMs, int? Code, string? Reason, string Description, string? CodeName, string? Meaning, string? HowToResolve)
{
    public static EndReport From(ConnectionEnd end, bool closedByProbe)
    {
        var info = end.ObservedCode is { } code ? CloseCodeCatalog.Get(new CloseCode(code)) : null;
        var description = closedByProbe ? "still open at the end of --duration; the probe closed it with 1000" : end.Describe();
        var culture = CultureInfo.GetCultureInfo("en");
        return new EndReport(
            end.Kind.ToString().ToLowerInvariant() switch { "closeframe" => "close-frame", "stillopen" => "still-open", var k => k },
            ProbeReport.Ms(end.After),
            end.ObservedCode,
            end.Reason,
            description,
            info?.GetName(culture),
            info?.GetMeaning(culture),
            info?.GetHowToResolve(culture));
    }
}
