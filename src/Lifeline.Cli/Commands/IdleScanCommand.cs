using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Lifeline.Cli.Rendering;
using Lifeline.Diagnostics.IdleScan;
using Lifeline.Diagnostics.Probe;
using Spectre.Console;

namespace Lifeline.Cli.Commands;

/// <summary><c>lifeline idle-scan URL</c>: measures the idle timeout of the load balancer, proxy or NAT on the path.</summary>
internal static class IdleScanCommand
{
    private static readonly TimeSpan SmallestMin = TimeSpan.FromMilliseconds(500);

    public static Command Create(CliConsole console)
    {
        var url = new Argument<string>("url") { Description = "The ws:// or wss:// address to scan through." };
        var min = NumberOptions.Seconds("--min", "Shortest silence to try, seconds (at least 0.5).", 5);
        var max = NumberOptions.Seconds("--max", "Longest silence to try, seconds; bounds the scan.", 600);
        var parallel = NumberOptions.Whole("--parallel", "Connections held silent at once (1-32).", 4, 1, 32);
        var resolution = NumberOptions.Seconds("--resolution", "Stop narrowing a silent drop once the range is this small, seconds.", 0.5);
        var pongTimeout = NumberOptions.Seconds("--pong-timeout", "Seconds to wait for a pong (to the first ping of each connection, and to the ping after its silence).", 2);
        var timeout = NumberOptions.Seconds("--timeout", "Seconds allowed to open each connection.", 10);
        var json = CommonOptions.Json("Print the result as one JSON object (progress goes to stderr).");
        var command = new Command("idle-scan", "Find the idle timeout of whatever sits between client and server, and how it cuts idle connections.")
        {
            url, min, max, parallel, resolution, pongTimeout, timeout, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var uri = CommonOptions.ParseWebSocketUrl(result.GetValue(url)!, "idle-scan");
            var options = Options(uri, result.GetValue(min), result.GetValue(max), (int)result.GetValue(parallel), result.GetValue(resolution),
                result.GetValue(pongTimeout), result.GetValue(timeout));
            var asJson = result.GetValue(json);
            var progress = new LineProgress(asJson ? console.Error : console.Output);
            var scan = await IdleScanner.ScanAsync(options, progress, cancellationToken).ConfigureAwait(false);
            if (scan.Failure is { } failure)
            {
                var what = failure.Stage == ProbeStage.Ping ? $"{uri} does not hold the connection" : $"cannot connect to {uri}";
                await console.Error.WriteLineAsync($"error: {what}: {failure.Message}").ConfigureAwait(false);
                // What the connections opened before measured, or why none could be timed. With --json always: a script
                // reading stdout gets one document, with the failure in it, whatever happened.
                if (asJson || failure.Stage == ProbeStage.Ping || scan.LongestSurvived is not null || scan.ShortestKilled is not null)
                {
                    Render(console, scan, asJson);
                }

                return ExitCodes.Failure;
            }

            Render(console, scan, asJson);
            return scan.Interrupted ? ExitCodes.Interrupted : ExitCodes.Success;
        });
        return command;
    }

    internal static IdleScanOptions Options(Uri uri, double min, double max, int parallel, double resolution, double pongTimeout, double timeout)
    {
        var minimum = CommonOptions.PositiveSeconds(min, "--min", "idle-scan");
        if (minimum < SmallestMin)
        {
            throw new UsageException($"--min must be at least {SmallestMin.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s, not {min.ToString(CultureInfo.InvariantCulture)}.", "idle-scan");
        }

        var maximum = CommonOptions.PositiveSeconds(max, "--max", "idle-scan");
        if (maximum <= minimum)
        {
            throw new UsageException(
                $"--max ({max.ToString(CultureInfo.InvariantCulture)} s) must be larger than --min ({min.ToString(CultureInfo.InvariantCulture)} s); lower --min to scan short timeouts.",
                "idle-scan");
        }

        if (parallel is < 1 or > 32)
        {
            throw new UsageException($"--parallel must be 1-32, not {parallel}.", "idle-scan");
        }

        return new IdleScanOptions(uri)
        {
            MinSilence = minimum,
            MaxSilence = maximum,
            Parallel = parallel,
            Resolution = CommonOptions.PositiveSeconds(resolution, "--resolution", "idle-scan"),
            PongTimeout = CommonOptions.PositiveSeconds(pongTimeout, "--pong-timeout", "idle-scan"),
            ConnectTimeout = CommonOptions.PositiveSeconds(timeout, "--timeout", "idle-scan"),
        };
    }

    private static void Render(CliConsole console, IdleScanResult result, bool json)
    {
        var scan = IdleScanReport.From(result);
        if (json)
        {
            console.Output.WriteLine(JsonSerializer.Serialize(scan, CatalogJson.Compact));
            return;
        }

        string Seconds(double? value) => value is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v:0.##} s") : "-";
        var grid = new Grid().AddColumn().AddColumn();
        void Row(string label, string value) => grid.AddRow(new Markup($"[bold]{Markup.Escape(label)}[/]"), new Text(value));
        var interrupted = scan.Interrupted ? ", scan interrupted" : string.Empty;
        Row("idle timeout", scan.CutDespiteTraffic ? $"none that pings reset: connections are cut after about {Seconds(scan.IdleTimeoutSeconds ?? scan.BusyConnectionCutAfterSeconds)} even when pinged (see advice){interrupted}"
            : scan.Found && scan.IdleTimeoutSeconds is null ? $"at most {Seconds(scan.ShortestKilledSeconds)}, below --min (see advice){interrupted}"
            : scan.Found ? $"about {Seconds(scan.IdleTimeoutSeconds)}{interrupted}"
            : scan.Interrupted ? "not found yet, scan interrupted"
            : result.Failure is { Stage: ProbeStage.Ping } ? "cannot be measured (see advice)"
            : scan.Failure is not null ? "not found, scan stopped early (see advice)"
            : $"none up to --max ({Seconds(scan.MaxSeconds)})");
        Row("longest silence survived", Seconds(scan.LongestSurvivedSeconds) + interrupted);
        Row("shortest silence killed", Seconds(scan.ShortestKilledSeconds));
        Row("killed by", IdleScanReport.DescribeKilledBy(result));
        Row("busy connection", DescribeBusyConnection(result));
        Row("connections used", scan.Connections.ToString(CultureInfo.InvariantCulture));
        Row("elapsed", Seconds(scan.ElapsedSeconds));
        Row("advice", scan.Advice);
        console.Rich.Write(grid);
    }

    private static string DescribeBusyConnection(IdleScanResult result)
    {
        var every = string.Create(CultureInfo.InvariantCulture, $"pinged every {result.BusyPingInterval.TotalSeconds:0.##} s");
        return result switch
        {
            { BusyConnectionEnd: { } end } => string.Create(CultureInfo.InvariantCulture, $"cut after {end.After.TotalSeconds:0.##} s ({end.Describe()}), though {every}"),
            { BusyConnectionGaveWay: true, BusyConnectionWatched: { } watched } => string.Create(CultureInfo.InvariantCulture,
                $"closed after {watched.TotalSeconds:0.##} s to make room: a connection of the scan found none (the server, or a limit on the path, holds few connections)"),
            { BusyConnectionNotHeld: true, BusyConnectionWatched: { } watched } => string.Create(CultureInfo.InvariantCulture,
                $"ended after {watched.TotalSeconds:0.##} s, before it answered its first pings (refused, or cut sooner than its interval): it tells nothing"),
            { BusyConnectionNotHeld: true } => "could not be opened: it tells nothing",
            { BusyConnectionGaveWay: true } => "closed while it was opening, to make room: a connection of the scan found none (the server, or a limit on the path, holds few connections)",
            { BusyConnectionWatched: { } watched } => string.Create(CultureInfo.InvariantCulture, $"lived {watched.TotalSeconds:0.##} s, to the end of the scan ({every})"),
            _ => "not opened (it opens once a first silent connection is held)",
        };
    }

    /// <summary>Writes each progress event as one line at once, in order, whichever scan task reports it.</summary>
    private sealed class LineProgress(TextWriter writer) : IProgress<IdleScanProgress>
    {
        public void Report(IdleScanProgress value)
        {
            var line = IdleScanReport.ProgressLine(value);
            lock (writer)
            {
                writer.WriteLine(line);
                writer.Flush();
            }
        }
    }
}
