using System.Threading.Tasks.Sources;

namespace Lifeline.AspNetCore;

/// <summary>
/// The handler's wait for its next message, parked on this inbox rather than on its channel, so that the carrier that
/// wrote the message can run the handler's continuation on its own thread (<see cref="HandOver"/>, called once the
/// carrier holds nothing). A message then reaches a session's handler with one thread-pool hop from the socket (to the
/// carrier), as it reaches a plain connection's handler, instead of two; side by side on one host it lowered the echo
/// round trip's p50 by 0.3-1.5 µs and its p99 by 12-25% in each of six runs (docs/benchmarks-history.md). Every other wake (the inbox completed or discarded, the wait cancelled)
/// runs the continuation on the thread pool: those come from a drain, a session's end or a token's owner, which must
/// not run a handler's code in their turn.
/// </summary>
/// <remarks>
/// One wait at a time uses this object, from parking until its result is read; a second concurrent reader waits on the
/// channel as before. The check that there is nothing to read and the parking happen under the session's lock, and a
/// writer looks for a parked reader under the same lock after its write, so a message written in between is never
/// missed. A handed-over handler runs on the carrier until its next await: a handler that blocks there holds up the
/// reading of its own socket (documented on <see cref="LifelineSession.Messages"/>).
/// </remarks>
internal sealed partial class SessionInbox : IValueTaskSource<bool>
{
    private ManualResetValueTaskSourceCore<bool> _parkedRead = new() { RunContinuationsAsynchronously = true };
    private bool _parkedReadTaken; // from parking until the wait's result is read: nobody else may reset it meanwhile
    private bool _readerParked; // parked and not woken yet
    private CancellationToken _parkedToken;
    private CancellationTokenRegistration _parkedCancellation;

    /// <summary>Whether a reader is parked (tests).</summary>
    internal bool HasParkedReader
    {
        get
        {
            lock (_session.SyncRoot)
            {
                return _readerParked;
            }
        }
    }

    /// <summary>
    /// The carrier wrote a message (<see cref="WriteAsync"/>) and holds no lock or turn now: a parked reader is woken
    /// and runs on this thread until its next await.
    /// </summary>
    public void HandOver() => WakeParkedReader(inline: true);

    /// <summary>Parks the reader when there is nothing to read and this object's wait is free; false: wait on the channel.</summary>
    private bool TryPark(CancellationToken cancellationToken, out ValueTask<bool> parked)
    {
        parked = default;
        if (cancellationToken.IsCancellationRequested)
        {
            return false; // the channel's wait reports it
        }

        lock (_session.SyncRoot)
        {
            if (_parkedReadTaken || _channel.Reader.Count > 0 || _channel.Reader.Completion.IsCompleted)
            {
                return false; // the channel's wait completes at once, or another reader's wait uses this object
            }

            _parkedReadTaken = true;
            _readerParked = true;
            _parkedToken = cancellationToken;
            parked = new ValueTask<bool>(this, _parkedRead.Version);
            // The session's own Ending token, the one its handler is given, is not registered with (a registration and its
            // removal on every message): Ending is cancelled only after this inbox was completed or discarded, which
            // wakes the parked reader first (LifelineSession.TryEnd and FreezeLocked).
            if (cancellationToken.CanBeCanceled && cancellationToken != _session.Ending)
            {
                // Under the lock (it is re-entrant): a token cancelled meanwhile runs the callback here, and it finds the
                // wait parked.
                _parkedCancellation = cancellationToken.UnsafeRegister(static (state, token) => ((SessionInbox)state!).CancelParkedRead(token), this);
            }
        }

        return true;
    }

    /// <summary>
    /// A message was written (<paramref name="inline"/>: by the carrier, which runs the reader now), or the inbox ended
    /// (the reader runs on the thread pool, and finds "no more" when nothing is left to read).
    /// </summary>
    private void WakeParkedReader(bool inline)
    {
        CancellationTokenRegistration registration;
        bool canRead;
        lock (_session.SyncRoot)
        {
            if (!_readerParked)
            {
                return;
            }

            _readerParked = false;
            registration = _parkedCancellation;
            _parkedCancellation = default;
            _parkedToken = default;
            canRead = inline || !_channel.Reader.Completion.IsCompleted;
        }

        registration.Unregister(); // does not wait for a callback under way: that one finds nobody parked
        _parkedRead.RunContinuationsAsynchronously = !inline;
        _parkedRead.SetResult(canRead);
    }

    private void CancelParkedRead(CancellationToken token)
    {
        lock (_session.SyncRoot)
        {
            // A callback of an earlier wait's token that was under way while that wait was woken finds another token here.
            if (!_readerParked || _parkedToken != token)
            {
                return;
            }

            _readerParked = false;
            _parkedCancellation = default;
            _parkedToken = default;
        }

        _parkedRead.RunContinuationsAsynchronously = true;
        _parkedRead.SetException(new OperationCanceledException(token));
    }

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        try
        {
            return _parkedRead.GetResult(token);
        }
        finally
        {
            lock (_session.SyncRoot)
            {
                // The wait is over once its result is read: only now may the next one reset this object. (Not for a
                // stale token, or a result asked for before the wait ended: that wait, or a newer one, still uses it.)
                if (_parkedReadTaken && !_readerParked && token == _parkedRead.Version)
                {
                    _parkedRead.Reset();
                    _parkedReadTaken = false;
                }
            }
        }
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _parkedRead.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _parkedRead.OnCompleted(continuation, state, token, flags);
}
