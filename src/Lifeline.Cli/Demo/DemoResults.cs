namespace Lifeline.Cli.Demo;

/// <summary>
/// When one incident played: its start, the moment the fault hit, and the end of its measurement (ms since the demo
/// started). <c>AllLinksHit</c>: every open link was hit, even those whose client never noticed (the black hole).
/// </summary>
internal sealed record IncidentWindow(int Index, DemoIncident Incident, double Start, double Fault, double MeasureEnd, bool AllLinksHit);

/// <summary>One kind of client through one incident.</summary>
internal sealed record KindFigures(
    int Clients,
    int Affected,
    int Detected,
    double? DetectMs,
    double? DetectMaxMs,
    int Back,
    double? AllBackMs,
    int PeakReconnectsPerSecond,
    MessageCounts Up,
    MessageCounts Down,
    int? SessionsResumed,
    int? SessionsLost)
{
    public MessageCounts Total => Up + Down;
}

internal sealed record IncidentResult(IncidentWindow Window, IReadOnlyDictionary<ClientKind, KindFigures> Kinds);

internal sealed record DemoResult(int ClientsPerKind, int Seed, double ElapsedSeconds, IReadOnlyList<IncidentResult> Incidents)
{
    /// <summary>Every session message, both ways, over the whole run.</summary>
    public MessageCounts SessionTotal => Incidents.Select(i => i.Kinds[ClientKind.Session].Total).Aggregate(default(MessageCounts), MessageCounts.Add);

    /// <summary>What the exit code says: a session client lost or duplicated a message.</summary>
    public bool SessionsFailed => SessionTotal.Lost > 0 || SessionTotal.Duplicated > 0;
}

/// <summary>Turns what the clients recorded into the figures of each incident.</summary>
internal static class DemoAnalysis
{
    public static DemoResult Analyse(DemoLedger ledger, IReadOnlyList<IncidentWindow> windows, int perKind, int seed, double elapsedSeconds)
    {
        var results = new List<IncidentResult>();
        var messages = Enum.GetValues<ClientKind>().ToDictionary(kind => kind, kind =>
        {
            var up = new MessageCounts[windows.Count];
            var down = new MessageCounts[windows.Count];
            foreach (var client in ledger.OfKind(kind))
            {
                client.Up.AddTo(up);
                client.Down.AddTo(down);
            }

            return (Up: up, Down: down);
        });

        foreach (var window in windows)
        {
            var kinds = Enum.GetValues<ClientKind>().ToDictionary(kind => kind,
                kind => Figures(ledger, kind, window, messages[kind].Up[window.Index], messages[kind].Down[window.Index]));
            results.Add(new IncidentResult(window, kinds));
        }

        return new DemoResult(perKind, seed, elapsedSeconds, results);
    }

    private static KindFigures Figures(DemoLedger ledger, ClientKind kind, IncidentWindow window, MessageCounts up, MessageCounts down)
    {
        var clients = ledger.OfKind(kind).ToList();
        var affected = 0;
        var detections = new List<double>();
        var backs = new List<double>();
        var resumed = 0;
        var sessionsLost = 0;
        foreach (var client in clients)
        {
            var events = client.Events();
            var inWindow = events.Where(e => e.At >= window.Start && e.At <= window.MeasureEnd).ToList();
            var firstLost = inWindow.Where(e => e.Kind == ProbeEventKind.Lost).Select(e => (ProbeEvent?)e).FirstOrDefault();
            if (firstLost is null && !(window.AllLinksHit && ConnectedAt(events, window.Fault)))
            {
                continue;
            }

            affected++;
            resumed += inWindow.Count(e => e.Kind == ProbeEventKind.Resumed);
            sessionsLost += inWindow.Count(e => e.Kind == ProbeEventKind.SessionLost);
            if (firstLost is not { } lost)
            {
                continue;
            }

            detections.Add(Math.Max(0, lost.At - window.Fault));
            if (LastChange(events, window.MeasureEnd) is { Kind: ProbeEventKind.Back } last && last.At >= lost.At)
            {
                backs.Add(Math.Max(0, last.At - window.Fault));
            }
        }

        detections.Sort();
        var session = kind == ClientKind.Session;
        return new KindFigures(
            clients.Count,
            affected,
            detections.Count,
            detections.Count > 0 ? NearestRank(detections, 0.5) : null,
            detections.Count > 0 ? detections[^1] : null,
            backs.Count,
            affected > 0 && backs.Count == affected ? backs.Max() : null,
            PeakPerSecond(ledger.Attempts(kind), window.Start, window.MeasureEnd),
            up,
            down,
            session ? resumed : null,
            session ? sessionsLost : null);
    }

    private static bool ConnectedAt(ProbeEvent[] events, double at) => LastChange(events, at) is { Kind: ProbeEventKind.Back };

    /// <summary>The last connection change (lost or back) at or before <paramref name="at"/>.</summary>
    private static ProbeEvent? LastChange(ProbeEvent[] events, double at) =>
        events.Where(e => e.At <= at && e.Kind is ProbeEventKind.Lost or ProbeEventKind.Back).Select(e => (ProbeEvent?)e).LastOrDefault();

    /// <summary>
    /// The <paramref name="p"/> quantile of sorted values by nearest rank (the bench's percentiles too): the median of
    /// 100 is the 50th, of 2 the first. (It took the upper middle before: of 2 values, always the larger.)
    /// </summary>
    internal static double NearestRank(IReadOnlyList<double> sorted, double p) => sorted[Math.Max(0, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>The most attempts in any one-second span within [from, to].</summary>
    internal static int PeakPerSecond(double[] sortedAttempts, double from, double to)
    {
        var inWindow = sortedAttempts.Where(at => at >= from && at <= to).ToArray();
        var peak = 0;
        var first = 0;
        for (var i = 0; i < inWindow.Length; i++)
        {
            while (inWindow[i] - inWindow[first] >= 1000)
            {
                first++;
            }

            peak = Math.Max(peak, i - first + 1);
        }

        return peak;
    }
}
