using Lifeline.Diagnostics.Probe;
using Lifeline.Diagnostics.Raw;

namespace Lifeline.Diagnostics.IdleScan;

/// <summary>
/// One connection an idle scan keeps busy while it runs: a ping every <see cref="Interval"/>, whether or not the last one
/// was answered yet. A path that cuts it too ends connections whatever their ping traffic (a maximum lifetime, or an idle
/// clock that pings do not reset), which the silent connections alone would read as an idle timeout that pings cure. It
/// is a second opinion only: nothing it meets (a refusal, a failure, a server with no room for it) ends or changes the scan.
/// </summary>
internal sealed class BusyConnectionWatch : IDisposable
{
    /// <summary>Its cut counts only once this many pongs came back: a connection ended before (refused, or cut by an idle timeout shorter than the interval) says nothing.</summary>
    private const int PongsToCount = 2;

    /// <summary>How long a failed ping waits for the connection's end to be read, to tell a reset from a missing pong.</summary>
    private static readonly TimeSpan EndSettles = TimeSpan.FromMilliseconds(500);

    private readonly Uri _uri;
    private readonly RawConnectOptions _connect;
    private readonly TimeProvider _time;
    private readonly TimeSpan _closeTimeout;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _running = Task.CompletedTask;
    private int _started;
    private long _openedAt;     // 0 until it is open
    private long _watchedUntil; // when it was cut or closed; 0 while it lives
    private ConnectionEnd? _cut;
    private int _gaveWay;
    private int _notHeld;

    public BusyConnectionWatch(Uri uri, RawConnectOptions connect, TimeProvider time, TimeSpan minSilence, TimeSpan pongTimeout)
    {
        _uri = uri;
        _connect = connect;
        _time = time;
        Interval = TimeSpan.FromTicks(Math.Clamp(minSilence.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(1).Ticks));
        SilentAfter = (pongTimeout * 2) + Interval;
        _closeTimeout = pongTimeout;
    }

    /// <summary>
    /// A quarter of the shortest silence tried, between 50 ms and 1 s: the connection is never idle for as long as any
    /// silence the scan holds, so an idle timeout that pings reset does not cut this one.
    /// </summary>
    public TimeSpan Interval { get; }

    /// <summary>No pong for this long (two pong timeouts and an interval: several pings unanswered) is a silent cut.</summary>
    public TimeSpan SilentAfter { get; }

    /// <summary>The longest a silent cut takes to be declared after its last pong: the silence, the next interval, and the settling.</summary>
    public TimeSpan SilentCutNoticedWithin => SilentAfter + Interval + EndSettles;

    /// <summary>
    /// How the busy connection was cut, once it had answered its first pings (<see cref="ConnectionEnd.After"/> is its age
    /// then; for a silent cut, when it was declared). Null while it lives, and when it never counted.
    /// </summary>
    public ConnectionEnd? Cut => Volatile.Read(ref _cut);

    /// <summary>Its age when the last pong arrived: a silent cut came after this.</summary>
    public TimeSpan LastAlive { get; private set; }

    /// <summary>Completes when the connection is open (or the watch is over without it).</summary>
    public Task Opened => _opened.Task;

    /// <summary>How long it has been open: null before it opened.</summary>
    public TimeSpan? Age => Interlocked.Read(ref _openedAt) is not 0 and var opened ? _time.GetElapsedTime(opened) : null;

    /// <summary>How long it was watched open: to its cut, its close, or now. Null when it never opened.</summary>
    public TimeSpan? Watched => Interlocked.Read(ref _openedAt) is not 0 and var opened
        ? (Interlocked.Read(ref _watchedUntil) is not 0 and var until ? _time.GetElapsedTime(opened, until) : _time.GetElapsedTime(opened))
        : null;

    /// <summary>It was closed early to make room for one of the scan's own connections.</summary>
    public bool GaveWay => Volatile.Read(ref _gaveWay) != 0;

    /// <summary>It could not be opened, or ended before it had answered its first pings (refused, or cut sooner than its interval): it says nothing.</summary>
    public bool NotHeld => Volatile.Read(ref _notHeld) != 0;

    /// <summary>Completes when the watch is over (cut, closed, stopped, or it could not open); never faults.</summary>
    public Task Running => Volatile.Read(ref _running);

    /// <summary>Opens the connection once <paramref name="trigger"/> completes and keeps it busy until it is cut or stopped.</summary>
    /// <param name="trigger">The first silent connection is held: only then is there room and reason for this one.</param>
    /// <param name="onCut">Called once when a counted cut is seen.</param>
    public void StartAfter(Task trigger, Action<ConnectionEnd> onCut) => Volatile.Write(ref _running, RunAsync(trigger, onCut, _stop.Token));

    /// <summary>
    /// A scan connection found no room, perhaps because this one took the last place: closes it. True when it was
    /// connecting or open just now (so there may be room), false when it held no place.
    /// </summary>
    public async Task<bool> GiveWayAsync()
    {
        if (Volatile.Read(ref _started) == 0 || Running.IsCompleted)
        {
            return false;
        }

        Volatile.Write(ref _gaveWay, 1);
        await StopAsync().ConfigureAwait(false);
        if (Cut is not null)
        {
            Volatile.Write(ref _gaveWay, 0); // it was cut before it could give way
        }

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
            Volatile.Write(ref _started, 1);
            var (socket, _, _) = await RawWebSocket.ConnectAsync(_uri, _connect, _time, cancellationToken).ConfigureAwait(false);
            if (socket is null)
            {
                if (!cancellationToken.IsCancellationRequested)
                {
                    Volatile.Write(ref _notHeld, 1);
                }

                return;
            }

            await using var session = new RawSession(socket, _time);
            Interlocked.Exchange(ref _openedAt, _time.GetTimestamp());
            _opened.TrySetResult();
            try
            {
                var end = await KeepBusyAsync(session, cancellationToken).ConfigureAwait(false);
                LastAlive = session.LastPongAge ?? TimeSpan.Zero;
                if (session.PongsReceived < PongsToCount)
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
                // Stopped (the scan ended, or it gives way) while open: a clean close, 1000, not the server's 1006.
                await session.CloseIfOpenAsync(_closeTimeout).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // A second opinion: whatever goes wrong here (a stop, a progress handler that throws) must not end the scan.
        catch (Exception)
#pragma warning restore CA1031
        {
            // The watch is over; what it saw so far stays.
        }
        finally
        {
            _opened.TrySetResult();
        }
    }

    /// <summary>Pings until the connection ends; a stop throws <see cref="OperationCanceledException"/>.</summary>
    private async Task<ConnectionEnd> KeepBusyAsync(RawSession session, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await session.ObserveAsync(Interval, cancellationToken).ConfigureAwait(false) is { } end)
            {
                return end;
            }

            var sincePong = session.Elapsed - (session.LastPongAge ?? TimeSpan.Zero);
            if (sincePong >= SilentAfter || !await session.SendPingAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    // A reset may reach the reader a moment after the ping failed.
                    return await session.Ended.WaitAsync(EndSettles, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    return session.MarkSilent();
                }
            }
        }
    }
}
