namespace Lifeline.Client;

/// <summary>
/// Lifeline's keep-alive for one connection: when nothing has arrived for the keep-alive interval it sends a Ping, and
/// when still nothing arrives within the keep-alive timeout after that the link is dead (<see cref="Expired"/>; the
/// callback aborts the socket). Any data counts, not only the Pong, so a link that carries messages is never pinged.
/// Checked every quarter of the shorter of the two periods, on a timer shared by every monitor with the same tick.
/// </summary>
internal sealed class KeepAliveMonitor : IDisposable
{
    private static readonly TimeSpan ShortestTick = TimeSpan.FromMilliseconds(10);

    private readonly LinkStream _stream;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly Action<object?> _onDead;
    private readonly object? _state;
    private readonly KeepAliveTicker _ticker;
    private int _readsSeen;
    private long _quietSince;
    private long? _pingAskedAt;
    private int _writeProgressSeen;
    private int _ticking;
    private int _expired;
    private long _pingsAnswered;

    /// <summary>Starts watching <paramref name="stream"/>; <paramref name="onDead"/> is called once, with <paramref name="state"/>, when the link is declared dead (a static lambda: no closure per connection).</summary>
    public KeepAliveMonitor(LinkStream stream, TimeSpan interval, TimeSpan timeout, TimeProvider time, Action<object?> onDead, object? state)
    {
        _stream = stream;
        _interval = interval;
        _timeout = timeout;
        _time = time;
        _onDead = onDead;
        _state = state;
        _readsSeen = stream.Reads;
        _quietSince = time.GetTimestamp();
        var shorter = interval < timeout ? interval : timeout;
        var tick = shorter / 4 > ShortestTick ? shorter / 4 : ShortestTick;
        _ticker = KeepAliveTicker.For(time, tick);
        _ticker.Add(this);
    }

    /// <summary>The connection's stream this monitor watches.</summary>
    public LinkStream Stream => _stream;

    /// <summary>Whether this monitor watches the connection of <paramref name="state"/> (the state its callback gets: the socket).</summary>
    public bool Watches(object state) => ReferenceEquals(_state, state);

    /// <summary>Whether the link was declared dead: no data within the timeout after a ping.</summary>
    public bool Expired => Volatile.Read(ref _expired) != 0;

    /// <summary>How many pings were followed by data (the Pong, or anything else) in time.</summary>
    public long PingsAnswered => Interlocked.Read(ref _pingsAnswered);

    /// <summary>Called by the shared ticker.</summary>
    internal void Tick()
    {
        if (Interlocked.Exchange(ref _ticking, 1) != 0)
        {
            return; // the previous tick still runs
        }

        try
        {
            var now = _time.GetTimestamp();
            var reads = _stream.Reads;
            if (reads != _readsSeen)
            {
                if (_pingAskedAt is not null)
                {
                    Interlocked.Increment(ref _pingsAnswered);
                }

                _readsSeen = reads;
                _quietSince = now;
                _pingAskedAt = null;
                return;
            }

            if (_pingAskedAt is { } askedAt)
            {
                var progress = _stream.WriteProgress;
                if (progress != _writeProgressSeen && _stream.PingPending)
                {
                    // The ping waits behind a large frame whose write still moves: the link lives, and the timeout
                    // starts again (a black hole stops the write, and the timeout then runs out).
                    _writeProgressSeen = progress;
                    _pingAskedAt = now;
                    return;
                }

                if (_time.GetElapsedTime(askedAt, now) >= _timeout)
                {
                    Volatile.Write(ref _expired, 1);
                    _ticker.Remove(this);
                    _onDead(_state);
                }
                else if (_stream.PingPending)
                {
                    _stream.RequestPing(); // not written yet (the socket was writing): try again
                }

                return;
            }

            if (_time.GetElapsedTime(_quietSince, now) >= _interval)
            {
                _pingAskedAt = now;
                _writeProgressSeen = _stream.WriteProgress;
                _stream.RequestPing();
            }
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }

    public void Dispose() => _ticker.Remove(this);
}
