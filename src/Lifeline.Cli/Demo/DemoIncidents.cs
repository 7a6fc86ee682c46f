using System.Globalization;
using Lifeline.CloseCodes;

namespace Lifeline.Cli.Demo;

/// <summary>The scripted incidents, in the order they play.</summary>
internal enum IncidentKind
{
    LinkDrop,
    BlackHole,
    Restart,
    Shed,
    IdleCut,
}

/// <summary>An incident's name on the command line, what it does, and the close code the clients see.</summary>
internal sealed record DemoIncident(IncidentKind Kind, string Name, CloseCode Code, string What)
{
    public static IReadOnlyList<DemoIncident> All { get; } =
    [
        new(IncidentKind.LinkDrop, "link-drop", CloseCode.AbnormalClosure,
            "the proxy resets every TCP link (RST), as when a network path or a NAT entry dies"),
        new(IncidentKind.BlackHole, "black-hole", CloseCode.AbnormalClosure,
            "the proxy keeps every link open but lets nothing through; only a keep-alive that waits for its pong notices"),
        new(IncidentKind.Restart, "restart", CloseCode.ServiceRestart,
            "the server host drains with 1012 and spread retry hints, saves its sessions, stops, and a new host starts on the same port"),
        new(IncidentKind.Shed, "shed", CloseCode.TryAgainLater,
            "the server sheds about half its connections with 1013 and a retry hint, and refuses new ones for 2 s"),
        new(IncidentKind.IdleCut, "idle-cut", CloseCode.AbnormalClosure,
            "traffic pauses for 3 s and the proxy cuts every link idle for 1 s (RST), like a load balancer's idle timeout"),
    ];

    public static string Names => string.Join(", ", All.Select(i => i.Name));

    /// <summary>The catalogue's name and one-line meaning of the code this incident produces.</summary>
    public string Explanation => $"{Code.Value} {Code.Info.GetName(CultureInfo.InvariantCulture)}: {Code.Info.GetMeaning(CultureInfo.InvariantCulture)}";

    /// <summary>Parses "link-drop,restart" (names may also come as separate values); the order of play stays the catalogue's.</summary>
    public static IReadOnlyList<DemoIncident> Parse(IEnumerable<string> values)
    {
        var wanted = new HashSet<IncidentKind>();
        foreach (var name in values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            var incident = All.FirstOrDefault(i => string.Equals(i.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? (string.Equals(name, "all", StringComparison.OrdinalIgnoreCase) ? null : throw new UsageException(
                    $"--incidents: '{name}' is not an incident; use {Names} (comma-separated), or all.", "demo"));
            if (incident is null)
            {
                wanted.UnionWith(All.Select(i => i.Kind));
            }
            else
            {
                wanted.Add(incident.Kind);
            }
        }

        if (wanted.Count == 0)
        {
            throw new UsageException($"--incidents needs at least one of {Names}.", "demo");
        }

        return [.. All.Where(i => wanted.Contains(i.Kind))];
    }
}
