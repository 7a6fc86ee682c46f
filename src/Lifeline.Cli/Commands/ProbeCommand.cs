using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Lifeline.Cli.Rendering;
using Lifeline.Diagnostics.Probe;
using Spectre.Console;

namespace Lifeline.Cli.Commands;

/// <summary><c>lifeline probe URL</c>: one connection, timed step by step, pinged, watched until it ends, explained.</summary>
internal static class ProbeCommand
{
    public static Command Create(CliConsole console)
    {
        var url = new Argument<string>("url") { Description = "The ws:// or wss:// address to probe." };
        var duration = NumberOptions.Seconds("--duration", "Seconds to keep the connection open after the pings, watching how it ends.", 10, allowZero: true);
        var pings = NumberOptions.Whole("--pings", "How many ping round trips to time.", 5, 0, 1000);
        var timeout = NumberOptions.Seconds("--timeout", "Seconds allowed for DNS, TCP, TLS and the upgrade together.", 10);
        var origin = new Option<string?>("--origin") { Description = "An Origin header to send (servers that check origins answer 403 without one)." };
        var subprotocols = new Option<string[]>("--subprotocol", "-s") { Description = "A subprotocol to offer (repeatable)." };
        var insecure = new Option<bool>("--insecure", "-k") { Description = "INSECURE: accept any TLS certificate (test servers only)." };
        var json = CommonOptions.Json("Print one JSON object instead of text.");
        var command = new Command("probe", "Connect once and report DNS, TCP, TLS and upgrade timings, headers, ping round trips and how the connection ended.")
        {
            url, duration, pings, timeout, origin, subprotocols, insecure, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var uri = CommonOptions.ParseWebSocketUrl(result.GetValue(url)!, "probe");
            var count = (int)result.GetValue(pings);
            if (count is < 0 or > 1000)
            {
                throw new UsageException($"--pings must be 0-1000, not {count}.", "probe");
            }

            var options = new ProbeOptions(uri)
            {
                ConnectTimeout = CommonOptions.PositiveSeconds(result.GetValue(timeout), "--timeout", "probe"),
                Origin = CommonOptions.HeaderValue(result.GetValue(origin), "--origin", "probe"),
                SubProtocols = CommonOptions.SubProtocols(result.GetValue(subprotocols) ?? [], "probe"),
                AllowUntrustedCertificate = result.GetValue(insecure),
                WatchDuration = CommonOptions.PositiveSeconds(result.GetValue(duration), "--duration", "probe", allowZero: true),
                Pings = count,
            };
            ProbeResult probe;
            try
            {
                probe = await WebSocketProbe.RunAsync(options, progress: null, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await console.Error.WriteLineAsync($"probe interrupted before the connection to {uri} opened: nothing measured").ConfigureAwait(false);
                throw;
            }

            var report = ProbeReport.From(probe);
            Render(console, report, result.GetValue(json));
            return report.Interrupted ? ExitCodes.Interrupted : report.FailedStage is null ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }

    private static void Render(CliConsole console, ProbeReport report, bool json)
    {
        if (json)
        {
            console.Output.WriteLine(JsonSerializer.Serialize(report, CatalogJson.Compact));
            return;
        }

        var grid = new Grid().AddColumn().AddColumn();
        void Row(string label, string? value) => grid.AddRow(new Markup($"[bold]{Markup.Escape(label)}[/]"), new Text(value ?? "-"));
        string? Ms(double? value) => value is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v:0.###} ms") : null;

        Row("url", report.Url);
        Row("addresses", report.Addresses.Length == 0 ? null : string.Join(", ", report.Addresses));
        Row("connected to", report.Remote);
        Row("dns", Ms(report.DnsMs));
        Row("tcp", Ms(report.TcpMs));
        Row("tls", report.Url.StartsWith("wss", StringComparison.Ordinal) ? Ms(report.TlsMs) : "not used (ws://)");
        Row("upgrade", Ms(report.UpgradeMs));
        Row("status", report.Status?.ToString(CultureInfo.InvariantCulture));
        Row("subprotocol", report.Subprotocol ?? "none");
        Row("extensions", report.Extensions ?? "none");
        foreach (var (name, value) in report.Headers)
        {
            Row($"  {name}", value);
        }

        if (report.FailedStage is not null)
        {
            Row("failed at", report.FailedStage);
            Row("cause", report.Cause);
            if (!string.IsNullOrWhiteSpace(report.BodyStart))
            {
                Row("body", report.BodyStart.Trim());
            }

            console.Rich.Write(grid);
            return;
        }

        Row("pings", report.PingsMs.Length == 0 ? (report.PingsLost == 0 ? "none sent" : "none answered") : string.Join(", ", report.PingsMs.Select(p => p.ToString("0.###", CultureInfo.InvariantCulture))) + " ms");
        if (report.PingsMs.Length > 0)
        {
            Row("  min/avg/max", string.Create(CultureInfo.InvariantCulture, $"{report.PingsMs.Min():0.###} / {report.PingsMs.Average():0.###} / {report.PingsMs.Max():0.###} ms, {report.PingsLost} lost"));
        }

        if (report.Interrupted)
        {
            Row("ended", "not watched to the end: interrupted; the probe closed the connection with 1000");
        }

        if (report.End is { } end)
        {
            Row("ended", string.Create(CultureInfo.InvariantCulture, $"after {end.AfterMs / 1000:0.###} s: {end.Description}"));
            if (end.Code is { } code)
            {
                Row("client sees", $"{code} {end.CodeName}");
                Row("meaning", end.Meaning);
                Row("what to do", end.HowToResolve);
            }
        }

        console.Rich.Write(grid);
    }
}
