using System.Globalization;
using System.Text.Json;

namespace Lifeline.Cli.Rendering;

/// <summary>Writes connection events as JSON lines or as readable text, one line each, never wrapped; safe to call from several threads.</summary>
internal sealed class EventWriter(CliConsole console, bool json, TimeProvider time)
{
    private readonly Lock _lock = new();

    public void Write(EventLine line)
    {
        lock (_lock)
        {
            // Plain writes, never through the rich console: a line goes out whole whatever the terminal width.
            console.Output.WriteLine(json ? JsonSerializer.Serialize(line, CatalogJson.Compact) : Describe(line));
            console.Output.Flush();
        }
    }

    public EventLine Line(string name) => new(time.GetUtcNow(), name);

    private static string Describe(EventLine line)
    {
        var at = line.Time.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
        var parts = new List<string> { at, line.Event };
        if (line.Code is { } code)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{code} {Lifeline.CloseCodes.CloseCodeCatalog.Get(new(code)).GetName(CultureInfo.InvariantCulture)}"));
        }

        if (line.Reason is { Length: > 0 } reason)
        {
            parts.Add($"reason \"{reason}\"");
        }

        if (line.CloseFrameReceived is { } frame)
        {
            parts.Add(frame ? "(Close frame received)" : "(no Close frame)");
        }

        if (line.Cause is { } cause)
        {
            parts.Add($"- {cause}");
        }

        if (line.Attempt is { } attempt)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"attempt {attempt}"));
        }

        if (line.DelayMs is { } delay)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"in {delay} ms"));
        }

        if (line.Data is { } data)
        {
            parts.Add(data);
        }

        if (line.Session is { } session)
        {
            parts.Add(DescribeSession(session));
        }

        return string.Join(' ', parts);
    }

    private static string DescribeSession(SessionInfo session)
    {
        var parts = new List<string> { $"session {session.Id}" };
        if (session.ReplayedToServer is { } toServer && session.ReplayedFromServer is { } fromServer)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"replayed {toServer} to server, {fromServer} from server"));
        }
        else if (session.Resumed == false && session.LostReason is null)
        {
            parts.Add("(new)");
        }

        if (session.LostReason is { } reason)
        {
            parts.Add(session.Refused == true ? "(resume refused)" : session.LostByServer == true ? $"({reason}, said the server)" : $"({reason})");
            parts.Add($"lost from server {session.LostFromServer}, unconfirmed to server {session.UnconfirmedToServer}");
            if (session.ServerLastReceived is { } last)
            {
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"(server received up to {last})"));
            }
        }

        return string.Join(' ', parts);
    }
}
