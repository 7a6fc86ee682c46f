using System.Collections.Concurrent;

namespace Lifeline.Client;

/// <summary>
/// One timer for every keep-alive monitor with the same clock and tick, so that an idle connection holds no timer of
/// its own (a timer is about as big as the rest of the keep-alive's per-connection state together). The timer runs
/// only while some monitor is registered.
/// </summary>
internal sealed class KeepAliveTicker
{
    private static readonly ConcurrentDictionary<(TimeProvider Time, TimeSpan Tick), KeepAliveTicker> Tickers = new();

    private readonly TimeProvider _time;
    private readonly TimeSpan _tick;
    private readonly Lock _lock = new();
    private readonly HashSet<KeepAliveMonitor> _monitors = [];
    private ITimer? _timer;

    private KeepAliveTicker(TimeProvider time, TimeSpan tick)
    {
        _time = time;
        _tick = tick;
    }

    public static KeepAliveTicker For(TimeProvider time, TimeSpan tick) =>
        Tickers.GetOrAdd((time, tick), static key => new KeepAliveTicker(key.Time, key.Tick));

    public void Add(KeepAliveMonitor monitor)
    {
        lock (_lock)
        {
            _monitors.Add(monitor);
            _timer ??= _time.CreateTimer(static state => ((KeepAliveTicker)state!).Tick(), this, _tick, _tick);
        }
    }

    public void Remove(KeepAliveMonitor monitor)
    {
        lock (_lock)
        {
            if (_monitors.Remove(monitor) && _monitors.Count == 0)
            {
                _timer?.Dispose();
                _timer = null;
            }
        }
    }

    private void Tick()
    {
        KeepAliveMonitor[] monitors;
        lock (_lock)
        {
            monitors = [.. _monitors];
        }

        // Outside the lock: a monitor may ping (a process-wide barrier) or abort its socket.
        foreach (var monitor in monitors)
        {
            monitor.Tick();
        }
    }
}
