namespace Lifeline.AspNetCore.Dashboard;

/// <summary>
/// The dashboard's data source: the meter "Lifeline" (through <see cref="DashboardMetrics"/>) and this server's
/// registry and drain state. Registered as a singleton by <c>MapLifelineDashboard</c>'s service registration; it starts
/// listening when first resolved (at mapping time).
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class LifelineDashboard : IDisposable
{
    public const int BucketSeconds = 5;
    public const string ClosesSent = "lifeline.server.closes_sent";
    public const string Accepted = "lifeline.server.accepted";
    public const string Rejected = "lifeline.server.rejected";
    public const string SessionsRefused = "lifeline.server.sessions_refused";
    public const string Sessions = "lifeline.server.sessions";

    private readonly DashboardMetrics _metrics;
    private readonly LifelineServer _server;
    private readonly TimeProvider _time;
    /// <summary>How long the live feed's pages share one snapshot: half their period, so none is more than that behind.</summary>
    internal static readonly TimeSpan SharedFor = TimeSpan.FromMilliseconds(500);

    private readonly Lock _drainLock = new();
    private readonly Lock _sharedLock = new();
    private SharedSnapshot? _shared;
    private long _sharedAt;
    private DateTimeOffset? _drainFinishedAt;
    private long _drainCloses;

    public LifelineDashboard(LifelineServer server, TimeProvider time, System.Diagnostics.Metrics.IMeterFactory? meterFactory = null)
    {
        _server = server;
        _time = time;
        _metrics = new DashboardMetrics(time, meterFactory) { Measured = OnMeasured };
    }

    /// <summary>The drain, once one has begun; completes when it is over.</summary>
    public Task? Drain => _server.IsDraining ? _server.DrainAsync(CancellationToken.None) : null;

    /// <summary>
    /// The snapshot the live feed sends: one captured within the last <see cref="SharedFor"/> is sent as it is, so a
    /// server watched by many pages builds about two a second, not one per page per second.
    /// </summary>
    public SharedSnapshot CaptureShared()
    {
        var now = _time.GetTimestamp();
        lock (_sharedLock)
        {
            if (_shared is null || _time.GetElapsedTime(_sharedAt, now) >= SharedFor)
            {
                _shared = new SharedSnapshot(Capture());
                _sharedAt = now;
            }

            return _shared;
        }
    }

    /// <summary>A fresh snapshot (the <c>/data</c> endpoint, the feed's last one after a drain).</summary>
    public DashboardSnapshot Capture()
    {
        var now = _time.GetUtcNow();
        var second = now.ToUnixTimeSeconds();
        var instruments = _metrics.Snapshot(second);
        var drain = CaptureDrain(now);

        var closes = instruments.FirstOrDefault(i => i.Name == ClosesSent);
        var codes = closes is null
            ? []
            : closes.ByCode.OrderBy(p => p.Key).Select(p =>
            {
                var buckets = Buckets(p.Value.PerSecond);
                return new CloseSeries(p.Key, (long)p.Value.Total, buckets.Sum(), buckets);
            }).ToList();

        var accepts = Last(Sum(instruments, i => i.Name == Accepted));
        // Server instruments only: a Lifeline client in the same process (its reconnect attempts, its replays) is not this server's traffic.
        var reconnects = Last(Sum(instruments, i => IsServerCounter(i) && (i.Name.Contains("resum", StringComparison.Ordinal) || i.Name.Contains("reconnect", StringComparison.Ordinal))));
        var replay = Last(Sum(instruments, i => IsServerCounter(i) && i.Name.Contains("replay", StringComparison.Ordinal)));
        // Refused work either way: an upgrade closed at once, or a new session refused with 1013 at MaxSessions (its
        // connection was accepted, so it is not in lifeline.server.rejected).
        var rejects = Last(Sum(instruments, i => i.Name is Rejected or SessionsRefused));
        var closesPerSecond = Last(closes?.PerSecond ?? new double[DashboardMetrics.HistorySeconds]);
        var sessions = instruments.Where(i => i.Name == Sessions).Sum(i => i.Total);

        return new DashboardSnapshot(
            now,
            _server.Registry.Count,
            sessions,
            drain,
            new DashboardRates(Complete(accepts), Complete(reconnects), Complete(rejects), Complete(closesPerSecond), Complete(replay)),
            new CloseChart(BucketSeconds, now, codes),
            new DashboardSeries(accepts, reconnects, replay),
            [.. instruments.Select(i => new InstrumentSummary(i.Name, i.Kind, i.Unit, i.Total, Complete(i.PerSecond)))]);
    }

    public void Dispose() => _metrics.Dispose();

    private static bool IsServerCounter(DashboardMetrics.InstrumentSnapshot instrument) =>
        instrument.Kind == "counter" && instrument.Name.StartsWith("lifeline.server.", StringComparison.Ordinal);

    /// <summary>The last complete second of a per-second series (the last entry is the current, partial one).</summary>
    private static double Complete(double[] perSecond) => perSecond.Length >= 2 ? perSecond[^2] : 0;

    private static double[] Last(double[] perSecond) => perSecond[^DashboardSnapshot.SeriesSeconds..];

    private static double[] Sum(IReadOnlyList<DashboardMetrics.InstrumentSnapshot> instruments, Func<DashboardMetrics.InstrumentSnapshot, bool> which)
    {
        var sum = new double[DashboardMetrics.HistorySeconds];
        foreach (var instrument in instruments.Where(which))
        {
            for (var i = 0; i < sum.Length; i++)
            {
                sum[i] += instrument.PerSecond[i];
            }
        }

        return sum;
    }

    /// <summary>Folds a per-second window into buckets of <see cref="BucketSeconds"/>, the last bucket ending now.</summary>
    private static long[] Buckets(double[] perSecond)
    {
        var buckets = new long[perSecond.Length / BucketSeconds];
        for (var i = 0; i < perSecond.Length; i++)
        {
            buckets[i / BucketSeconds] += (long)perSecond[i];
        }

        return buckets;
    }

    private void OnMeasured(string instrument, int? code)
    {
        if (instrument == ClosesSent && _server.IsDraining)
        {
            if (code is 1012 or 1013)
            {
                Interlocked.Increment(ref _drainCloses);
            }
        }
    }

    private DrainProgress CaptureDrain(DateTimeOffset now)
    {
        var draining = _server.IsDraining;
        // Taken by the server as the drain began: a dashboard that first looks later (the feed ticks once a second, and a
        // quick drain is over by then) still shows how many connections there were to close.
        var began = _server.DrainBegan;
        lock (_drainLock)
        {
            if (draining && _drainFinishedAt is null && Drain is { IsCompleted: true })
            {
                _drainFinishedAt = now;
            }

            return new DrainProgress(draining, began?.At, began?.Connections ?? _server.Registry.Count, _server.Registry.Count, Interlocked.Read(ref _drainCloses),
                _drainFinishedAt is not null, _drainFinishedAt);
        }
    }
}

/// <summary>A snapshot shared by the live feed's pages, serialized once for all of them.</summary>
/// <param name="Snapshot">The snapshot.</param>
internal sealed record SharedSnapshot(DashboardSnapshot Snapshot)
{
    private string? _json;

    /// <summary>The snapshot as JSON, made by the first page that asks.</summary>
    public string Json(Func<DashboardSnapshot, string> serialize) =>
        Volatile.Read(ref _json) ?? Interlocked.CompareExchange(ref _json, serialize(Snapshot), null) ?? _json!;
}
