using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Spectre.Console;

namespace Lifeline.Cli.Demo;

/// <summary>The demo's summary: one table (incident x kind of client), or one JSON document.</summary>
internal static class DemoReport
{
    public static string KindName(ClientKind kind) => kind switch
    {
        ClientKind.Session => "session",
        ClientKind.Plain => "plain",
        _ => "naive",
    };

    public static string KindLabel(ClientKind kind) => kind switch
    {
        ClientKind.Session => "Lifeline, sessions",
        ClientKind.Plain => "Lifeline, plain",
        _ => "naive loop",
    };

    public static void WriteTable(CliConsole console, DemoResult result)
    {
        var table = new Table().Title("lifeline demo: what each kind of client went through");
        foreach (var column in new[] { "incident", "client", "affected", "time to detect (p50, max)", "all back after", "peak reconnects/s", "sent", "received", "lost", "duplicated", "sessions resumed", "sessions lost" })
        {
            table.AddColumn(new TableColumn(column));
        }

        foreach (var incident in result.Incidents)
        {
            var first = true;
            foreach (var (kind, figures) in incident.Kinds.OrderBy(k => k.Key))
            {
                var total = figures.Total;
                table.AddRow(
                    Markup.Escape(first ? $"{incident.Window.Incident.Name} ({incident.Window.Incident.Code.Value})" : string.Empty),
                    Markup.Escape(KindLabel(kind)),
                    Count(figures.Affected) + "/" + Count(figures.Clients),
                    Markup.Escape(Detect(figures)),
                    Markup.Escape(Back(figures)),
                    Count(figures.PeakReconnectsPerSecond),
                    Count(total.Sent),
                    Count(total.Received),
                    Highlight(total.Lost, kind),
                    Highlight(total.Duplicated, kind),
                    figures.SessionsResumed is { } resumed ? Count(resumed) : "-",
                    figures.SessionsLost is { } lost ? Highlight(lost, kind) : "-");
                first = false;
            }

            if (incident != result.Incidents[^1])
            {
                table.AddEmptyRow();
            }
        }

        console.Rich.Write(table);
        var sessions = result.SessionTotal;
        console.Rich.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Lost and duplicated count both directions; a message belongs to the incident during which it was sent. Took {result.ElapsedSeconds:0.0} s with {result.ClientsPerKind} clients per kind, seed {result.Seed}.")));
        console.Rich.MarkupLine(result.SessionsFailed
            ? $"[red]Session clients lost {Count(sessions.Lost)} and duplicated {Count(sessions.Duplicated)} of {Count(sessions.Sent)} messages: that is a bug.[/]"
            : $"[green]Session clients: {Count(sessions.Sent)} messages sent, none lost, none duplicated.[/]");
    }

    public static string Json(DemoResult result)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteNumber("clientsPerKind", result.ClientsPerKind);
            json.WriteNumber("seed", result.Seed);
            json.WriteNumber("elapsedSeconds", Math.Round(result.ElapsedSeconds, 1));
            json.WriteBoolean("sessionsLossless", !result.SessionsFailed);
            json.WriteStartArray("incidents");
            foreach (var incident in result.Incidents)
            {
                var definition = incident.Window.Incident;
                json.WriteStartObject();
                json.WriteString("name", definition.Name);
                json.WriteNumber("closeCode", definition.Code.Value);
                json.WriteString("explanation", definition.Explanation);
                json.WriteString("what", definition.What);
                foreach (var (kind, figures) in incident.Kinds.OrderBy(k => k.Key))
                {
                    json.WriteStartObject(KindName(kind));
                    WriteFigures(json, figures);
                    json.WriteEndObject();
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static void WriteFigures(Utf8JsonWriter json, KindFigures figures)
    {
        json.WriteNumber("clients", figures.Clients);
        json.WriteNumber("affected", figures.Affected);
        json.WriteNumber("detected", figures.Detected);
        WriteMs(json, "detectMs", figures.DetectMs);
        WriteMs(json, "detectMaxMs", figures.DetectMaxMs);
        json.WriteNumber("back", figures.Back);
        WriteMs(json, "allBackMs", figures.AllBackMs);
        json.WriteNumber("peakReconnectsPerSecond", figures.PeakReconnectsPerSecond);
        var total = figures.Total;
        json.WriteNumber("sent", total.Sent);
        json.WriteNumber("received", total.Received);
        json.WriteNumber("lost", total.Lost);
        json.WriteNumber("duplicated", total.Duplicated);
        WriteDirection(json, "up", figures.Up);
        WriteDirection(json, "down", figures.Down);
        WriteOptional(json, "sessionsResumed", figures.SessionsResumed);
        WriteOptional(json, "sessionsLost", figures.SessionsLost);
    }

    private static void WriteDirection(Utf8JsonWriter json, string name, MessageCounts counts)
    {
        json.WriteStartObject(name);
        json.WriteNumber("sent", counts.Sent);
        json.WriteNumber("received", counts.Received);
        json.WriteNumber("lost", counts.Lost);
        json.WriteNumber("duplicated", counts.Duplicated);
        json.WriteEndObject();
    }

    private static void WriteMs(Utf8JsonWriter json, string name, double? value)
    {
        if (value is { } v)
        {
            json.WriteNumber(name, Math.Round(v));
        }
        else
        {
            json.WriteNull(name);
        }
    }

    private static void WriteOptional(Utf8JsonWriter json, string name, int? value)
    {
        if (value is { } v)
        {
            json.WriteNumber(name, v);
        }
        else
        {
            json.WriteNull(name);
        }
    }

    private static string Detect(KindFigures figures)
    {
        if (figures.Affected == 0)
        {
            return "-";
        }

        if (figures.Detected == 0)
        {
            return "never";
        }

        var text = $"{Seconds(figures.DetectMs)}, {Seconds(figures.DetectMaxMs)}";
        return figures.Detected < figures.Affected ? $"{text}; {figures.Affected - figures.Detected} never" : text;
    }

    private static string Back(KindFigures figures) =>
        figures.Affected == 0 ? "-"
        : figures.AllBackMs is { } ms ? Seconds(ms)
        : figures.Back == 0 ? "never"
        : $"only {Count(figures.Back)} of {Count(figures.Affected)}";

    private static string Seconds(double? ms) => ms is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v / 1000:0.00} s") : "-";

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Zero stays plain; a loss is red for a session client (a bug) and yellow for the others (expected).</summary>
    private static string Highlight(long value, ClientKind kind) =>
        value == 0 ? "0" : $"[{(kind == ClientKind.Session ? "red" : "yellow")}]{Count(value)}[/]";
}
