using System.Threading.Tasks.Sources;

namespace Lifeline.Session;

/// <summary>
/// Wakes an ack loop (the client's for a connection, the server's for a session on a socket) when a delivery makes an
/// ack due, or when the ack delay has passed; throws <see cref="OperationCanceledException"/> once its token ends. One
/// waiter (the loop), and nothing allocated per wait: the <see cref="SemaphoreSlim"/> waited on with a timeout and a
/// token before it allocated a state machine, a cancellation promise, a timer and, at each timeout, an exception,
/// several times per connection and every ack delay of a busy session (a reconnect storm of 5,000 session clients in
/// one process allocated them together, and the collections they caused held reconnect timers back).
/// </summary>
/// <remarks>
/// A wake may come early (a timer that fired for the wait before); the loop looks at what is due each time it wakes.
/// On a fake clock, a test advances it only once the wait has begun: an advance between the delay's computation here
/// and the arming of the timer would move the end of the wait by that much (the clock offers no absolute timers).
/// </remarks>
internal sealed class AckWake : IValueTaskSource, IDisposable
{
    private const int Idle = 0;
    private const int Waiting = 1;
    private const int Signalled = 2;
    private const int Ended = 3;

    // A timer takes at most about 49 days; an ack delay may be set longer (SessionAckOptions.MaxDelay is only checked to
    // be positive). Waking after a day instead is one of the early wakes the loop takes in its stride.
    private static readonly TimeSpan LongestTimer = TimeSpan.FromDays(1);

    private readonly TimeProvider _time;
    private readonly CancellationToken _connection;
    private readonly CancellationTokenRegistration _registration;
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private ITimer? _timer; // made at the first timed wait; written by the waiter only
    private int _state;

    /// <param name="time">The clock of the ack delay.</param>
    /// <param name="connection">Ends the waits (the connection, or the session on it, is over).</param>
    public AckWake(TimeProvider time, CancellationToken connection)
    {
        _time = time;
        _connection = connection;
        _registration = connection.UnsafeRegister(static wake => ((AckWake)wake!).End(), this);
    }

    /// <summary>Wakes the waiting loop, or lets its next wait return at once.</summary>
    public void Set()
    {
        while (true)
        {
            switch (Volatile.Read(ref _state))
            {
                case Waiting when Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting:
                    Complete(ended: false);
                    return;
                case Idle when Interlocked.CompareExchange(ref _state, Signalled, Idle) == Idle:
                case Signalled or Ended:
                    return;
            }
        }
    }

    /// <summary>A timestamp of this wake's clock: take it before working out how long to wait, and pass it to <see cref="WaitAsync"/>.</summary>
    public long Now => _time.GetTimestamp();

    /// <summary>
    /// Returns when set (at once if it was set since the last wait), when <paramref name="delay"/> has passed since
    /// <paramref name="from"/> (a <see cref="Now"/>; <see cref="Timeout.InfiniteTimeSpan"/>: no timer), or throws when
    /// the connection ends. One caller at a time. Measured from <paramref name="from"/> so that time passing while the
    /// caller worked out the delay (a fake clock advanced meanwhile) does not move the end of the wait.
    /// </summary>
    public ValueTask WaitAsync(TimeSpan delay, long from)
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Signalled) == Signalled)
        {
            return default;
        }

        var timed = delay != Timeout.InfiniteTimeSpan;
        if (timed)
        {
            delay -= _time.GetElapsedTime(from);
            if (delay <= TimeSpan.Zero)
            {
                return default; // due already
            }
        }
        else
        {
            // A timer armed for an earlier wait, which a set may not have stopped in time, must not end this one early.
            _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
        {
            // Set or ended since the line above.
            return Interlocked.CompareExchange(ref _state, Idle, Signalled) == Signalled ? default : ValueTask.FromCanceled(_connection);
        }

        if (timed)
        {
            _timer ??= _time.CreateTimer(static wake => ((AckWake)wake!).Elapsed(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(delay < LongestTimer ? delay : LongestTimer, Timeout.InfiniteTimeSpan);
        }

        return new ValueTask(this, _core.Version);
    }

    /// <summary>Lets the timer and the registration go (the loop is over).</summary>
    public void Dispose()
    {
        _registration.Unregister(); // not Dispose: that would wait for an End running on another thread
        _timer?.Dispose();
    }

    void IValueTaskSource.GetResult(short token)
    {
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
        }
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private void Elapsed()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
        {
            Complete(ended: false);
        }
    }

    private void End()
    {
        if (Interlocked.Exchange(ref _state, Ended) == Waiting)
        {
            Complete(ended: true);
        }
    }

    /// <summary>
    /// Completes the wait this caller took from Waiting. The timer stops first; if it was armed after this (a set racing
    /// the wait's start), the next untimed wait stops it, and a timed one arms it anew.
    /// </summary>
    private void Complete(bool ended)
    {
        try
        {
            _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // The loop is over: nothing waits for the timer.
        }

        if (ended)
        {
            _core.SetException(new OperationCanceledException(_connection));
        }
        else
        {
            _core.SetResult(true);
        }
    }
}
