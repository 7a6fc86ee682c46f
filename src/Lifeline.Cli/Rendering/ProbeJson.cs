using System.Globalization;
using Lifeline.CloseCodes;
using Lifeline.Diagnostics.Probe;

namespace Lifeline.Cli.Rendering;

/// <summary>Everything <c>lifeline probe</c> found out, in the shape of its JSON output (times in milliseconds).</summary>
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

    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    public string? Subprotocol { get; init; }

    public string? Extensions { get; init; }

    public double[] PingsMs { get; init; } = [];

    public int PingsLost { get; init; }

    public string? FailedStage { get; init; }

    public string? Cause { get; init; }

    public string? BodyStart { get; init; }

    public EndReport? End { get; init; }

    /// <summary>Ctrl-C stopped the probe once the connection was open: the figures are what it measured until then.</summary>
    public bool Interrupted { get; init; }

    public static double Ms(TimeSpan value) => Math.Round(value.TotalMilliseconds, 3);

    private static double? Ms(TimeSpan? value) => value is { } v ? Ms(v) : null;

    public static ProbeReport From(ProbeResult result) => new()
    {
        Url = result.Uri.ToString(),
        Addresses = [.. result.Addresses.Select(a => a.ToString())],
        Remote = result.RemoteEndPoint?.ToString(),
        DnsMs = Ms(result.DnsTime),
        TcpMs = Ms(result.TcpTime),
        TlsMs = Ms(result.TlsTime),
        UpgradeMs = Ms(result.UpgradeTime),
        Status = result.Response?.StatusCode,
        Headers = result.Response?.GetHeaderMap() ?? new Dictionary<string, string>(),
        Subprotocol = result.SubProtocol,
        Extensions = result.Extensions,
        PingsMs = [.. result.PingRoundTrips.Select(Ms)],
        PingsLost = result.PingsLost,
        FailedStage = result.Failure is { } failure ? failure.Stage.ToString().ToLowerInvariant() : null,
        Cause = result.Failure?.Message,
        BodyStart = result.Failure?.Response?.BodyStart,
        End = result.End is { } end ? EndReport.From(end, result.ClosedByProbe) : null,
        Interrupted = result.Interrupted,
    };
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
            KindName(end.Kind),
            ProbeReport.Ms(end.After),
            end.ObservedCode,
            end.CloseReason,
            description,
            info?.GetName(culture),
            info?.GetMeaning(culture),
            info?.GetHowToResolve(culture));
    }

    /// <summary>The kind as the JSON output names it: close-frame, fin, reset, silent, still-open, protocol-error.</summary>
    public static string KindName(ConnectionEndKind kind) => kind switch
    {
        ConnectionEndKind.CloseFrame => "close-frame",
        ConnectionEndKind.StillOpen => "still-open",
        ConnectionEndKind.ProtocolError => "protocol-error",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
