using System.Diagnostics.Metrics;
using System.Globalization;
using Lifeline.Diagnostics;

namespace Lifeline.AspNetCore.Dashboard;

/// <summary>
/// Listens to every instrument on the meter "Lifeline" and keeps what the dashboard shows: running totals, a
/// per-second history (last <see cref="HistorySeconds"/> seconds) per instrument, and per close code for instruments
/// tagged <c>close_code</c>. Instruments it does not know (sessions, replay, added later) are kept the same way and
/// listed by name; the well-known names only pick what the headline numbers and the chart use.
/// </summary>
/// <remarks>
/// Thread-safe: measurements arrive on any thread and are added under one lock (a few additions per connection
/// event; histograms count records and sum values). It reads this host's instruments (its meter factory's) and the
/// process-wide ones, not another host's in the same process. Bounded: one fixed ring per instrument (a fixed set) and
/// per (instrument, close code) pair, where every registered code has its own and other codes (an application's
/// 3000-4999, which a client may pick at will and the server sends back) at most <see cref="MaxUnregisteredCodes"/> per
/// instrument, the rest sharing <see cref="OtherCodes"/>. Values that are not finite are left out: one NaN would stay in
/// a sum for good, and JSON has no way to write it.
/// </remarks>
internal sealed class DashboardMetrics : IDisposable
{
    /// <summary>How far back the per-second history reaches: 5 minutes.</summary>
    public const int HistorySeconds = 300;

    /// <summary>At most this many unregistered close codes get an entry of their own per instrument.</summary>
    public const int MaxUnregisteredCodes = 16;

    /// <summary>The entry (code 0, which no Close frame carries) that holds the unregistered codes past <see cref="MaxUnregisteredCodes"/>.</summary>
    public const int OtherCodes = 0;

    private static readonly HashSet<int> RegisteredCodes = [.. Lifeline.CloseCodes.CloseCodeCatalog.Registered.Select(info => info.Code.Value)];

    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly MeterListener _listener;
    private readonly Dictionary<string, InstrumentState> _instruments = new(StringComparer.Ordinal);
    private long _observedSecond = long.MinValue; // when observable instruments were last read
    private long _observePass;                    // which read their measurements belong to (summed within one)

    public DashboardMetrics(TimeProvider time, IMeterFactory? meterFactory = null)
    {
        _time = time;
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                // This application's instruments (created by its host's meter factory) and the process-wide ones; not
                // another host's in the same process.
                if (instrument.Meter.Name == LifelineMetrics.MeterName
                    && (instrument.Meter.Scope is null || ReferenceEquals(instrument.Meter.Scope, meterFactory)))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    /// <summary>Called after each measurement (outside the lock) with the instrument name and the close code tag, if any.</summary>
    public Action<string, int?>? Measured { get; set; }

    /// <summary>The current second (Unix time), the clock all rings are indexed by.</summary>
    public long Now => _time.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>A consistent copy of every instrument's state, observable ones read now.</summary>
    public IReadOnlyList<InstrumentSnapshot> Snapshot(long now)
    {
        // At most once a second, whatever the number of viewers: some callbacks walk every session. Outside the lock:
        // their measurements come back through Record.
        var observed = Interlocked.Read(ref _observedSecond);
        if (observed != now && Interlocked.CompareExchange(ref _observedSecond, now, observed) == observed)
        {
            Interlocked.Increment(ref _observePass);
            _listener.RecordObservableInstruments();
        }

        lock (_lock)
        {
            return [.. _instruments.Values.OrderBy(i => i.Name, StringComparer.Ordinal).Select(i => i.Snapshot(now))];
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (!double.IsFinite(value))
        {
            return;
        }

        int? code = null;
        foreach (var tag in tags)
        {
            if (tag.Key == "close_code" && TryCode(tag.Value, out var parsed))
            {
                code = parsed;
            }
        }

        var now = Now;
        lock (_lock)
        {
            if (!_instruments.TryGetValue(instrument.Name, out var state))
            {
                state = new InstrumentState(instrument.Name, Kind(instrument), instrument.Unit, instrument.IsObservable);
                _instruments.Add(instrument.Name, state);
            }

            state.Add(now, value, instrument.IsObservable ? Interlocked.Read(ref _observePass) : -1);
            if (code is { } c)
            {
                state.RingFor(c).Add(now, value);
            }
        }

        Measured?.Invoke(instrument.Name, code);
    }

    private static bool TryCode(object? value, out int code)
    {
        switch (value)
        {
            case int i:
                code = i;
                return true;
            case long l when l is >= 0 and <= ushort.MaxValue:
                code = (int)l;
                return true;
            case ushort u:
                code = u;
                return true;
            case string s:
                return int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out code);
            default:
                code = 0;
                return false;
        }
    }

    private static string Kind(Instrument instrument)
    {
        var type = instrument.GetType();
        var name = type.IsGenericType ? type.GetGenericTypeDefinition().Name : type.Name;
        return name switch
        {
            "Counter`1" => "counter",
            "UpDownCounter`1" or "ObservableUpDownCounter`1" => "updown",
            "Histogram`1" => "histogram",
            "ObservableGauge`1" or "Gauge`1" or "ObservableCounter`1" => "gauge", // an observable counter reports its running total: a level
            _ => "other",
        };
    }

    /// <summary>One instrument as the dashboard sees it.</summary>
    /// <param name="Name">The instrument name, e.g. <c>lifeline.server.closes_sent</c>.</param>
    /// <param name="Kind">counter, updown, histogram or other.</param>
    /// <param name="Unit">The instrument's unit.</param>
    /// <param name="Total">Counters: the sum since the dashboard started; up-down counters: the current value; histograms: the number of records; observable instruments and gauges: the last value read.</param>
    /// <param name="Sum">The sum of all values (for histograms, the sum of the recorded values).</param>
    /// <param name="PerSecond">The last <see cref="HistorySeconds"/> seconds, oldest first: the sum of values (histograms: records) in each second.</param>
    /// <param name="ByCode">For measurements tagged <c>close_code</c>: totals and per-second history per code.</param>
    internal sealed record InstrumentSnapshot(string Name, string Kind, string? Unit, double Total, double Sum, double[] PerSecond, IReadOnlyDictionary<int, (double Total, double[] PerSecond)> ByCode);

    /// <param name="name">The instrument name.</param>
    /// <param name="kind">counter, updown, histogram, gauge or other.</param>
    /// <param name="unit">The instrument's unit.</param>
    /// <param name="lastValue">Observable instruments report their whole value each time they are read, and gauges a level: keep the last, never add them up.</param>
    private sealed class InstrumentState(string name, string kind, string? unit, bool lastValue)
    {
        private readonly Ring _ring = new();
        private int _unregisteredCodes;
        private readonly bool _lastValue = lastValue || kind == "gauge";
        private double _sum;
        private double _count;
        private long _pass = -1;

        public string Name { get; } = name;

        public Dictionary<int, Ring> ByCode { get; } = [];

        /// <summary>The ring of a close code: its own for a registered code and the first unregistered ones, else the shared one.</summary>
        public Ring RingFor(int code)
        {
            if (ByCode.TryGetValue(code, out var ring))
            {
                return ring;
            }

            if (!RegisteredCodes.Contains(code))
            {
                if (_unregisteredCodes == MaxUnregisteredCodes)
                {
                    code = OtherCodes;
                    if (ByCode.TryGetValue(code, out ring))
                    {
                        return ring;
                    }
                }
                else
                {
                    _unregisteredCodes++;
                }
            }

            ring = new Ring();
            ByCode.Add(code, ring);
            return ring;
        }

        /// <param name="now">The current second.</param>
        /// <param name="value">The measurement.</param>
        /// <param name="pass">For observable instruments, which read it came from: the measurements of one read (one per tag set) add up.</param>
        public void Add(long now, double value, long pass)
        {
            _count++;
            if (_lastValue)
            {
                _sum = pass >= 0 && pass == _pass ? _sum + value : value;
                _pass = pass;
                _ring.Set(now, _sum);
                return;
            }

            _sum += value;
            _ring.Add(now, kind == "histogram" ? 1 : value);
        }

        public InstrumentSnapshot Snapshot(long now) => new(
            Name,
            kind,
            unit,
            kind == "histogram" ? _count : _sum,
            _sum,
            _ring.Window(now),
            ByCode.ToDictionary(p => p.Key, p => (p.Value.Total, p.Value.Window(now))));
    }

    /// <summary>Per-second sums over the last <see cref="HistorySeconds"/> seconds, indexed by Unix second.</summary>
    private sealed class Ring
    {
        private readonly double[] _values = new double[HistorySeconds];
        private readonly long[] _seconds = new long[HistorySeconds];

        public double Total { get; private set; }

        public void Add(long second, double value)
        {
            Total += value;
            var slot = (int)(second % HistorySeconds);
            if (_seconds[slot] != second)
            {
                _seconds[slot] = second;
                _values[slot] = 0;
            }

            _values[slot] += value;
        }

        /// <summary>A level rather than an amount: <paramref name="value"/> replaces what this second held.</summary>
        public void Set(long second, double value)
        {
            Total = value;
            var slot = (int)(second % HistorySeconds);
            _seconds[slot] = second;
            _values[slot] = value;
        }

        /// <summary>The window ending with <paramref name="now"/>, oldest first.</summary>
        public double[] Window(long now)
        {
            var window = new double[HistorySeconds];
            for (var i = 0; i < HistorySeconds; i++)
            {
                var second = now - HistorySeconds + 1 + i;
                var slot = (int)(((second % HistorySeconds) + HistorySeconds) % HistorySeconds);
                window[i] = _seconds[slot] == second ? _values[slot] : 0;
            }

            return window;
        }
    }
}
