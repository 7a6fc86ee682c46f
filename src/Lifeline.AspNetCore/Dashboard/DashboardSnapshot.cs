namespace Lifeline.AspNetCore.Dashboard;

/// <summary>What the dashboard shows at one moment; served as JSON (camelCase) by <c>{prefix}/data</c> and pushed by <c>{prefix}/events</c>.</summary>
/// <param name="Time">When it was taken.</param>
/// <param name="Connections">WebSocket connections open on this server (its registry).</param>
/// <param name="Sessions">Open sessions: the sum of up-down counters whose name contains "sessions" (0 until sessions publish one).</param>
/// <param name="Drain">Drain (graceful restart) progress.</param>
/// <param name="Rates">Rates over the last complete second.</param>
/// <param name="Closes">Close frames sent by the server, per close code, in time buckets: the chart.</param>
/// <param name="Series">Per-second series for the last <see cref="DashboardSnapshot.SeriesSeconds"/> seconds, oldest first.</param>
/// <param name="Instruments">Every instrument seen on the meter "Lifeline", known or not.</param>
internal sealed record DashboardSnapshot(
    DateTimeOffset Time,
    int Connections,
    double Sessions,
    DrainProgress Drain,
    DashboardRates Rates,
    CloseChart Closes,
    DashboardSeries Series,
    IReadOnlyList<InstrumentSummary> Instruments)
{
    /// <summary>Length of the per-second series: 60 seconds.</summary>
    public const int SeriesSeconds = 60;
}

/// <summary>Drain progress.</summary>
/// <param name="Draining">True once a drain has begun (health answers 503, new upgrades get 1012).</param>
/// <param name="StartedAt">When the drain began, as first seen by the dashboard (the first Close frame it sent); null before.</param>
/// <param name="ConnectionsAtStart">Connections open when it began.</param>
/// <param name="ConnectionsLeft">Connections still open.</param>
/// <param name="ClosesSent">1012 and 1013 Close frames sent since it began.</param>
/// <param name="Finished">True once the drain is over (every client answered, or the rest were aborted).</param>
/// <param name="FinishedAt">When the dashboard saw it finish.</param>
internal sealed record DrainProgress(bool Draining, DateTimeOffset? StartedAt, int ConnectionsAtStart, int ConnectionsLeft, long ClosesSent, bool Finished, DateTimeOffset? FinishedAt);

/// <summary>Events per second over the last complete second.</summary>
/// <param name="Accepts">Connections accepted (<c>lifeline.server.accepted</c>).</param>
/// <param name="Reconnects">Reconnects seen by the server: counters whose name contains "resum" or "reconnect" (session resumes; 0 without sessions).</param>
/// <param name="Rejects">Upgrades refused (<c>lifeline.server.rejected</c>) and new sessions refused at MaxSessions (<c>lifeline.server.sessions_refused</c>).</param>
/// <param name="Closes">Close frames sent (<c>lifeline.server.closes_sent</c>).</param>
/// <param name="Replay">Replay volume: counters whose name contains "replay" (messages or bytes, as the instrument's unit says; 0 without sessions).</param>
internal sealed record DashboardRates(double Accepts, double Reconnects, double Rejects, double Closes, double Replay);

/// <summary>The close chart: per close code, how many Close frames the server sent in each bucket.</summary>
/// <param name="BucketSeconds">Width of a bucket: 5 s.</param>
/// <param name="End">End of the last bucket (the snapshot's second, inclusive).</param>
/// <param name="Codes">One series per code seen, in code order; each has <c>Buckets.Length</c> buckets, oldest first.</param>
internal sealed record CloseChart(int BucketSeconds, DateTimeOffset End, IReadOnlyList<CloseSeries> Codes);

/// <summary>One close code on the chart.</summary>
/// <param name="Code">The close code.</param>
/// <param name="Total">Sent since the dashboard started.</param>
/// <param name="Window">Sent within the chart's window (the sum of the buckets).</param>
/// <param name="Buckets">Counts per bucket, oldest first.</param>
internal sealed record CloseSeries(int Code, long Total, long Window, long[] Buckets);

/// <summary>Per-second series, oldest first, the last entry being the current (partial) second.</summary>
/// <param name="Accepts">Accepts per second.</param>
/// <param name="Reconnects">Reconnects (resumes) per second.</param>
/// <param name="Replay">Replay volume per second.</param>
internal sealed record DashboardSeries(double[] Accepts, double[] Reconnects, double[] Replay);

/// <summary>One instrument on the meter "Lifeline".</summary>
/// <param name="Name">Its name.</param>
/// <param name="Kind">counter, updown, histogram or other.</param>
/// <param name="Unit">Its unit.</param>
/// <param name="Total">Counters: sum since the dashboard started; up-down counters: the net value; histograms: number of records.</param>
/// <param name="LastSecond">The last complete second's sum (histograms: records).</param>
internal sealed record InstrumentSummary(string Name, string Kind, string? Unit, double Total, double LastSecond);
