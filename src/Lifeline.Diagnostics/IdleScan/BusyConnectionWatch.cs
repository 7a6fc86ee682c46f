using Lifeline.Diagnostics.Probe;
using Lifeline.Diagnostics.Raw;

namespace Lifeline.Diagnostics.IdleScan;

/// <summary>
/// One connection an idle scan keeps busy while it runs: a ping every <see cref="Interval"/>, each answered. A path that
/// cuts it too ends connections after a fixed time whatever their traffic (a maximum lifetime), which the silent
/// connections alone would read as an idle timeout; keep-alive pings would not help there. It is a second opinion only:
/// nothing it meets (a refusal, a failure, a server with no room for it) ends or changes the scan.
/// </summary>
internal sealed class BusyConnectionWatch : IDisposable
{
    /// <summary>A silent cut is declared after this many pings in a row went unanswered: one slow pong is not a cut.</summary>
    private const int MissedPongsForSilent = 3;

    /// <summary>Its cut counts only once it answered this many pings: a connection ended before (refused, or cut by an idle timeout shorter than the interval) says nothing about lifetimes.</summary>
    private const int AnsweredPingsToCount = 2;

    /// <summary>How long a failed ping waits for the connection's end to be read, to tell a reset from a missing pong.</summary>
    private static readonly TimeSpan EndSettles = TimeSpan.FromMilliseconds(500);

    private readonly Uri _uri;
    private readonly RawConnectOptions _connect;
    private readonly TimeProvider _time;
    private readonly TimeSpan _pongTimeout;
    private readonly CancellationTokenSource _stop = new();
    private Task _running = Task.CompletedTask;
    private long _connectingSince; // 0 until it starts connecting
    private long _openedAt;        // 0 until it is open
    private long _watchedUntil;    // when it was cut or closed; 0 while it lives
    private ConnectionEnd? _cut;
    private int _gaveWay;
    private int _notHeld;

    public BusyConnectionWatch(Uri uri, RawConnectOptions connect, TimeProvider time, TimeSpan minSilence, TimeSpan pongTimeout)
    {
        _uri = uri;
        _connect = connect;
        _time = time;
        _pongTimeout = pongTimeout;
        Interval = TimeSpan.FromTicks(Math.Clamp(minSilence.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(1).Ticks));
    }

    /// <summary>
    /// A quarter of the shortest silence tried, between 50 ms and 1 s: the connection is never idle for as long as any
    /// silence the scan holds, so an idle timeout the scan could find does not cut this one.
    /// </summary>
    public TimeSpan Interval { get; }

    /// <summary>
    /// How the busy connection was cut, once it had answered its first pings (<see cref="ConnectionEnd.After"/> is its age
    /// then; for a silent cut, when the third ping in a row went unanswered). Null while it lives, and when it never counted.
    /// </summary>
    public ConnectionEnd? Cut => Volatile.Read(ref _cut);

    /// <summary>Its age when it last answered a ping: for a silent cut, the cut came after this.</summary>
    public TimeSpan LastAlive { get; private set; }

    /// <summary>How long it has been connecting or open: null before it started connecting.</summary>
    public TimeSpan? Age => Interlocked.Read(ref _openedAt) is not 0 and var opened ? _time.GetElapsedTime(opened)
        : Interlocked.Read(ref _connectingSince) is not 0 and var connecting ? _time.GetElapsedTime(connecting)
        : null;

    /// <summary>How long it was watched open: to its cut, its close, or now. Null when it never opened.</summary>
    public TimeSpan? Watched => Interlocked.Read(ref _openedAt) is not 0 and var opened
        ? (Interlocked.Read(ref _watchedUntil) is not 0 and var until ? _time.GetElapsedTime(opened, until) : _time.GetElapsedTime(opened))
        : null;

    /// <summary>It ended before it had answered its first pings (refused, or cut sooner than its interval): it says nothing.</summary>
    public bool NotHeld => Volatile.Read(ref _notHeld) != 0;

    /// <summary>It was closed early to make room for one of the scan's own connections.</summary>
    public bool GaveWay => Volatile.Read(ref _gaveWay) != 0;

    /// <summary>Completes when the watch is over (cut, closed, stopped, or it could not open); never faults.</summary>
    public Task Running => Volatile.Read(ref _running);

    /// <summary>Opens the connection once <paramref name="trigger"/> completes and keeps it busy until it is cut or stopped.</summary>
    /// <param name="trigger">The first silent connection is held: only then is there room and reason for this one.</param>
    /// <param name="onCut">Called once when a counted cut is seen.</param>
    public void StartAfter(Task trigger, Action<ConnectionEnd> onCut) => Volatile.Write(ref _running, RunAsync(trigger, onCut, _stop.Token));

    /// <summary>
    /// A scan connection could not be opened or held, perhaps because this one took the server's last place: closes it.
    /// True when it had started (so there may be room now), false when it never took a place.
    /// </summary>
    public async Task<bool> GiveWayAsync()
    {
        if (Interlocked.Read(ref _connectingSince) == 0)
        {
            return false;
        }

        if (Cut is null)
        {
            Volatile.Write(ref _gaveWay, 1);
        }

        await StopAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>Ends the watch and waits for its connection to close.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Running.ConfigureAwait(false);
    }

    public void Dispose() => _stop.Dispose();

    private async Task RunAsync(Task trigger, Action<ConnectionEnd> onCut, CancellationToken cancellationToken)
    {
        try
        {
            await trigger.WaitAsync(cancellationToken).ConfigureAwait(false);
            Interlocked.Exchange(ref _connectingSince, _time.GetTimestamp());
            var (socket, _, _) = await RawWebSocket.ConnectAsync(_uri, _connect, _time, cancellationToken).ConfigureAwait(false);
            if (socket is null)
            {
                return;
            }

            await using var session = new RawSession(socket, _time);
            Interlocked.Exchange(ref _openedAt, _time.GetTimestamp());
            try
            {
                var end = await KeepBusyAsync(session, cancellationToken).ConfigureAwait(false);
                if (end is null)
                {
                    Volatile.Write(ref _notHeld, 1);
                }
                else
                {
                    Volatile.Write(ref _cut, end);
                    onCut(end);
                }
            }
            finally
            {
                Interlocked.Exchange(ref _watchedUntil, _time.GetTimestamp());
            }
        }
#pragma warning disable CA1031 // A second opinion: whatever goes wrong here (a cancelled wait, a progress handler that throws) must not end the scan.
        catch (Exception)
#pragma warning restore CA1031
        {
            // The watch is over; what it saw so far stays.
        }
    }

    /// <summary>The end that counts as a cut, or null when the connection ended before it had answered its first pings (a stop throws instead).</summary>
    private async Task<ConnectionEnd?> KeepBusyAsync(RawSession session, CancellationToken cancellationToken)
    {
        var answered = 0;
        var missed = 0;
        while (true)
        {
            var end = await session.ObserveAsync(Interval, cancellationToken).ConfigureAwait(false);
            if (end is null && await session.PingAsync(_pongTimeout, cancellationToken).ConfigureAwait(false) is not null)
            {
                (answered, missed) = (answered + 1, 0);
                LastAlive = session.Elapsed;
                continue;
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (end is null)
            {
                try
                {
                    // A reset may reach the reader a moment after the ping failed.
                    end = await session.Ended.WaitAsync(EndSettles, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    if (++missed < MissedPongsForSilent)
                    {
                        continue;
                    }

                    end = session.MarkSilent();
                }
            }

            return answered >= AnsweredPingsToCount ? end : null;
        }
    }
}
