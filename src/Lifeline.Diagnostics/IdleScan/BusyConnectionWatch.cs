using Lifeline.Diagnostics.Probe;
using Lifeline.Diagnostics.Raw;

namespace Lifeline.Diagnostics.IdleScan;

/// <summary>
/// One connection an idle scan keeps busy while it runs: a ping every <see cref="Interval"/>, each answered. A path that
/// cuts it too ends connections after a fixed time whatever their traffic (a maximum lifetime), which the silent
/// connections alone would read as an idle timeout; keep-alive pings would not help there.
/// </summary>
internal sealed class BusyConnectionWatch
{
    /// <summary>How long a failed ping waits for the connection's end to be read, to tell a reset from a missing pong.</summary>
    private static readonly TimeSpan EndSettles = TimeSpan.FromMilliseconds(500);

    private readonly Uri _uri;
    private readonly RawConnectOptions _connect;
    private readonly TimeProvider _time;
    private readonly TimeSpan _pongTimeout;
    private long _openedAt; // 0 until the connection is open
    private ConnectionEnd? _cut;

    public BusyConnectionWatch(Uri uri, RawConnectOptions connect, TimeProvider time, TimeSpan minSilence, TimeSpan pongTimeout)
    {
        _uri = uri;
        _connect = connect;
        _time = time;
        _pongTimeout = pongTimeout;
        Interval = IntervalFor(minSilence);
    }

    /// <summary>
    /// A quarter of the shortest silence tried, between 50 ms and 1 s: the connection is never idle for as long as any
    /// silence the scan holds, so an idle timeout it could find does not cut this one.
    /// </summary>
    public TimeSpan Interval { get; }

    /// <summary>How the busy connection was cut (<see cref="ConnectionEnd.After"/> is its age then); null while it lives.</summary>
    public ConnectionEnd? Cut => Volatile.Read(ref _cut);

    /// <summary>How long the connection has been open; null before it opened (or when it could not be opened).</summary>
    public TimeSpan? Age => Interlocked.Read(ref _openedAt) is var openedAt and not 0 ? _time.GetElapsedTime(openedAt) : null;

    public static TimeSpan IntervalFor(TimeSpan minSilence) =>
        TimeSpan.FromTicks(Math.Clamp(minSilence.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(1).Ticks));

    /// <summary>
    /// Opens the connection and keeps it busy until it is cut or <paramref name="cancellationToken"/> stops the watch. A
    /// connection that cannot be opened is not an observation: the scan's own connections report why.
    /// </summary>
    /// <param name="onCut">Called once when the connection is cut.</param>
    /// <param name="cancellationToken">Ends the watch: the scan is over.</param>
    public async Task RunAsync(Action<ConnectionEnd> onCut, CancellationToken cancellationToken)
    {
        try
        {
            var (socket, _, _) = await RawWebSocket.ConnectAsync(_uri, _connect, _time, cancellationToken).ConfigureAwait(false);
            if (socket is null)
            {
                return;
            }

            await using var session = new RawSession(socket, _time);
            Interlocked.Exchange(ref _openedAt, _time.GetTimestamp());
            var end = await KeepBusyAsync(session, cancellationToken).ConfigureAwait(false);
            if (end is not null)
            {
                Volatile.Write(ref _cut, end);
                onCut(end);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The scan is over.
        }
    }

    private async Task<ConnectionEnd?> KeepBusyAsync(RawSession session, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await session.ObserveAsync(Interval, cancellationToken).ConfigureAwait(false) is { } end)
            {
                return end;
            }

            if (await session.PingAsync(_pongTimeout, cancellationToken).ConfigureAwait(false) is null)
            {
                cancellationToken.ThrowIfCancellationRequested();
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
