using Lifeline.Session;
using Lifeline.Session.Store;
using Lifeline.Session.Wire;

namespace Lifeline.AspNetCore;

/// <summary>
/// The one writer of a session to the shared <see cref="ISessionJournal"/> (Redis): gathers the messages sent close
/// together, the handler's delivery cursor, the client's ack and the metadata into one fenced commit, and only after
/// that commit puts the messages and the ack on the wire. So nothing reaches the client, and nothing is acknowledged
/// to it, before it is in the store: a node killed without a drain loses nothing a resume elsewhere can replay.
/// </summary>
/// <remarks>
/// Thread-safe. A refused commit (another node took the session over) ends the session here at once: its socket is
/// closed with 4001 and nothing more is delivered or acknowledged. An unreachable store is retried with a bounded
/// backoff; sends wait at most <see cref="LifelineSessionOptions.StoreWriteTimeout"/>, and a session whose store stays
/// unreachable for its whole resume window is lost (SessionLost to the client), never dropped silently.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphores own no wait handles; the loop ends with the session.")]
internal sealed class SessionJournalWriter
{
    private const int MaxBatch = 256;
    private readonly LifelineSession _session;
    private readonly LifelineSessionManager _manager;
    private readonly ISessionJournal _journal;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _signal = new(0, 1);
    private List<PendingSend> _pending = [];
    private List<PendingSend>? _committing; // the batch taken from _pending for the commit under way
    private SessionJournalLease _lease;
    private bool _snapshotDirty;
    private bool _ackRequested;
    private bool _renew;
    private long _clientAck;
    private long _recordedAck;
    private long _durableSequence;
    private long _durableInbound;
    private Task _loop = Task.CompletedTask;
    private int _started;

    // Set while a resume on this node takes the session over in the store: it takes a new epoch first and hands the
    // new lease to this writer after, so a commit refused in between was refused for this node's own takeover.
    private TaskCompletionSource? _takeover;

    public SessionJournalWriter(LifelineSession session, LifelineSessionManager manager, ISessionJournal journal, SessionJournalLease lease,
        long durableSequence, long durableInbound, long recordedAck)
    {
        _session = session;
        _manager = manager;
        _journal = journal;
        _lease = lease;
        _durableSequence = durableSequence;
        _durableInbound = durableInbound;
        _recordedAck = recordedAck;
        _clientAck = recordedAck;
    }

    /// <summary>Serialises writes of Data and Ack frames with a resume's replay.</summary>
    public SemaphoreSlim WireLock { get; } = new(1, 1);

    public SessionJournalLease Lease => Volatile.Read(ref _lease);

    /// <summary>The last outbound sequence in the store: only these may go on the wire.</summary>
    public long DurableSequence => Interlocked.Read(ref _durableSequence);

    /// <summary>The last inbound sequence recorded as delivered: the only ack the client may see.</summary>
    public long DurableInbound => Interlocked.Read(ref _durableInbound);

    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            _loop = Task.Run(RunAsync);
        }
    }

    /// <summary>A newer lease of this node (a resume that found no other owner in between).</summary>
    public void Renew(SessionJournalLease lease) => Volatile.Write(ref _lease, lease);

    /// <summary>
    /// A resume on this node is about to take the session over in the store: until the returned scope ends (after
    /// <see cref="Renew"/>, or without it when another node served the session in between), a refused commit waits
    /// for it instead of fencing the session out.
    /// </summary>
    public TakeoverScope BeginTakeover()
    {
        var takeover = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _takeover = takeover;
        }

        return new TakeoverScope(this, takeover);
    }

    private void EndTakeover(TaskCompletionSource takeover)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_takeover, takeover))
            {
                _takeover = null;
            }
        }

        takeover.TrySetResult();
    }

    private Task? TakeoverInProgress()
    {
        lock (_gate)
        {
            return _takeover?.Task;
        }
    }

    /// <summary>Queues a numbered message (call under the session's send lock, so queue order is sequence order).</summary>
    // answersHanded: whether the send answers the message the handler holds (not a group send); see LifelineSession.SendCoreAsync.
    public Task Enqueue(long sequence, bool isText, ReadOnlyMemory<byte> payload, bool stateChanged, bool answersHanded = true)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool answered;
        lock (_gate)
        {
            if (_session.IsEnded)
            {
                // Ended since the send was numbered (a SessionLost from the client, without the send lock): its pending
                // sends were failed already and the writer is gone, so this one would wait out the store timeout and
                // then be reported as the store being away.
                done.TrySetException(new InvalidOperationException($"Session {_session.Id} ended before this send was stored."));
                return done.Task;
            }

            // The message the handler holds counts as delivered in the same commit as what it sends: the writer reads
            // the inbound cursor under this lock too, so no commit carries one without the other.
            answered = answersHanded && _session.Inbox.AcceptHandedForSend();
            _pending.Add(new PendingSend(new SessionMessage(sequence, isText, payload.ToArray()), done, _session.Inbound.LastDelivered));
            _snapshotDirty |= stateChanged;
        }

        if (answered)
        {
            _session.Inbox.RaiseDelivered();
        }

        Signal();
        return done.Task;
    }

    public void MarkSnapshotDirty()
    {
        lock (_gate)
        {
            _snapshotDirty = true;
        }

        Signal();
    }

    /// <summary>The client acknowledged up to <paramref name="ack"/>: drop them from the store with the next commit.</summary>
    public void ClientAcknowledged(long ack)
    {
        var raise = false;
        lock (_gate)
        {
            if (ack > _clientAck)
            {
                _clientAck = ack;
                raise = ack - _recordedAck >= 64;
            }
        }

        if (raise)
        {
            Signal();
        }
    }

    /// <summary>An ack to the client is due: record the delivery cursor, then send the Ack frame.</summary>
    public void RequestAck()
    {
        lock (_gate)
        {
            _ackRequested = true;
        }

        Signal();
    }

    /// <summary>Lengthens the session's keys in the store (a quiet session).</summary>
    public void RequestRenew()
    {
        lock (_gate)
        {
            _renew = true;
        }

        Signal();
    }

    /// <summary>Drain: waits (bounded) for what is queued, then commits the final snapshot and delivery cursor.</summary>
    public async Task FinishAsync(SessionSnapshot snapshot, TimeSpan bound, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(bound);
        try
        {
            while (true)
            {
                Task[] waiting;
                lock (_gate)
                {
                    waiting = [.. _pending.Select(p => p.Done.Task)];
                }

                if (waiting.Length == 0)
                {
                    break;
                }

                await Task.WhenAll(waiting).WaitAsync(timeout.Token).ConfigureAwait(false);
            }

            await _journal.CommitAsync(Lease, new SessionJournalCommit
            {
                Snapshot = snapshot,
                InboundDelivered = snapshot.LastInboundDelivered,
                OutboundAcknowledged = Interlocked.Read(ref _clientAck),
                KeepFor = _manager.Options.ResumeWindow,
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SessionStoreUnavailableException or InvalidOperationException or ObjectDisposedException)
        {
            // Best effort: everything sent or acknowledged is in the store already; only state changed since the last
            // commit is at stake. Queued sends fail below.
            SessionLog.StoreDrainIncomplete(_manager.Logger, _session.Id, e.Message);
        }
    }

    /// <summary>
    /// The handler returned: waits, at most <paramref name="bound"/>, until the sends queued or being committed now (its
    /// own, and group sends queued for it) are stored and on the wire, or have failed. Ending the session at once failed
    /// those still queued and closed the socket before the ones being committed went out: the client got 1000 without
    /// them. Sends that come later (a busy group) are not waited for, so that they cannot hold the end off.
    /// </summary>
    public async Task WaitForStoredAsync(TimeSpan bound)
    {
        Task[] waiting;
        lock (_gate)
        {
            waiting = [.. _pending.Select(p => p.Done.Task), .. (_committing ?? []).Select(p => p.Done.Task)];
        }

        if (waiting.Length > 0)
        {
            await Task.WhenAll(waiting).WaitAsync(bound, _manager.Time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> holding the gate a commit reads the inbound cursor under: a session ending moves
    /// the cursor this way, so a commit either reads it before (and commits as before) or finds the session ended.
    /// </summary>
    public void WithGate(Action action)
    {
        lock (_gate)
        {
            action();
        }
    }

    /// <summary>Fails every queued send (the session ended or was fenced).</summary>
    public void FailPending(Exception reason)
    {
        List<PendingSend> pending;
        lock (_gate)
        {
            pending = _pending;
            _pending = [];
        }

        foreach (var item in pending)
        {
            item.Done.TrySetException(reason);
        }

        Signal();
    }

    private void Signal()
    {
        if (_signal.CurrentCount == 0)
        {
            try
            {
                _signal.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled.
            }
        }
    }

    private async Task RunAsync()
    {
        var backoff = TimeSpan.Zero;
        DateTimeOffset? failingSince = null;
        var ending = _session.Ending;
        while (true)
        {
            if (backoff > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(backoff, _manager.Time, _session.IsFrozen ? CancellationToken.None : ending).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The session ended or was frozen: one more pass commits or fails what is queued.
                }
            }
            else
            {
                await _signal.WaitAsync().ConfigureAwait(false);
            }

            List<PendingSend> batch = [];
            bool snapshot = false, ack = false, renew = false, ended;
            long clientAck = 0, inbound = 0;
            lock (_gate)
            {
                // Checked under the gate: a session that ends moves its inbound cursor under it (see WithGate), so a commit
                // never records as delivered a message whose answer it does not carry.
                ended = _session.IsEnded;
                if (!ended)
                {
                    var take = Math.Min(_pending.Count, MaxBatch);
                    batch = _pending.GetRange(0, take);
                    _pending.RemoveRange(0, take);
                    _committing = batch;
                    (snapshot, ack, renew, clientAck) = (_snapshotDirty, _ackRequested, _renew, _clientAck);
                    (_snapshotDirty, _ackRequested, _renew) = (false, false, false);

                    // A batch cut short records the inbound cursor as its last send left it: a later send left behind may
                    // be the answer to a message delivered since, and the client must not drop that message before the
                    // answer is stored.
                    inbound = _pending.Count > 0 ? batch[^1].InboundAfter : _session.Inbound.LastDelivered;
                }
            }

            if (ended)
            {
                FailPendingEnded();
                return;
            }

            if (batch.Count == 0 && !snapshot && !renew && !(ack && inbound > DurableInbound) && clientAck - _recordedAck < 64)
            {
                if (ack)
                {
                    await SendAckAsync().ConfigureAwait(false);
                }

                backoff = TimeSpan.Zero;
                continue;
            }

            var lease = Lease;
            bool committed;
            try
            {
                committed = await _journal.CommitAsync(lease, new SessionJournalCommit
                {
                    Messages = batch.ConvertAll(b => b.Message),
                    InboundDelivered = inbound > DurableInbound ? inbound : null,
                    OutboundAcknowledged = clientAck > _recordedAck ? clientAck : null,
                    Snapshot = snapshot ? _session.MetadataSnapshot(_manager.Time.GetUtcNow(), _manager.Options.ResumeWindow) : null,
                    KeepFor = _manager.Options.ResumeWindow,
                }).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                // The node is going away (its store connection was disposed): stop without committing more.
                PutBack(batch, snapshot, ack, renew);
                _manager.Fenced(_session, "the session store was closed");
                FailPendingEnded();
                return;
            }
#pragma warning disable CA1031 // Any other store failure is retried: writes are idempotent.
            catch (Exception e)
#pragma warning restore CA1031
            {
                PutBack(batch, snapshot, ack, renew);
                var now = _manager.Time.GetUtcNow();
                failingSince ??= now;
                LifelineSessionManager.StoreErrors.Add(1, new KeyValuePair<string, object?>("kind", e is SessionStoreUnavailableException ? "unavailable" : e.GetType().Name));
                if (backoff == TimeSpan.Zero)
                {
                    SessionLog.StoreWriteFailed(_manager.Logger, _session.Id, e.Message);
                }

                if (now - failingSince.Value > _manager.Options.ResumeWindow || e is SessionStoreFullException)
                {
                    _manager.Lose(_session, e is SessionStoreFullException ? SessionLostReason.BufferFull : SessionLostReason.NotFound, tellClient: true);
                    FailPendingEnded();
                    return;
                }

                backoff = TimeSpan.FromMilliseconds(Math.Clamp(backoff.TotalMilliseconds * 2, 100, 1000));
                continue;
            }

            if (!committed)
            {
                if (TakeoverInProgress() is { } takeover)
                {
                    await takeover.ConfigureAwait(false); // this node's own resume took the epoch: see what lease it leaves
                }

                if (!ReferenceEquals(lease, Lease))
                {
                    PutBack(batch, snapshot, ack, renew);
                    backoff = TimeSpan.Zero;
                    Signal();
                    continue; // this node resumed the session with a newer lease meanwhile
                }

                _manager.Fenced(_session, $"epoch {lease.Epoch} was fenced out by another node");
                foreach (var item in batch)
                {
                    item.Done.TrySetException(new InvalidOperationException($"Session {_session.Id} is served by another node now; this send was not delivered here."));
                }

                FailPendingEnded();
                return;
            }

            if (failingSince is not null)
            {
                SessionLog.StoreRecovered(_manager.Logger, _session.Id);
                failingSince = null;
            }

            backoff = TimeSpan.Zero;
            _recordedAck = Math.Max(_recordedAck, clientAck);
            if (inbound > DurableInbound)
            {
                Interlocked.Exchange(ref _durableInbound, inbound);
            }

            await WireLock.WaitAsync().ConfigureAwait(false);
            try
            {
                if (batch.Count > 0)
                {
                    Interlocked.Exchange(ref _durableSequence, batch[^1].Message.Sequence);
                }

                if (_session.Carrier is { } carrier)
                {
                    foreach (var (message, _, _) in batch)
                    {
                        await carrier.SendDataAsync(_session, message.Sequence, message.IsText, message.Payload, DurableInbound).ConfigureAwait(false);
                    }

                    if (ack && batch.Count == 0)
                    {
                        await carrier.SendControlAsync(w => SessionFrameWriter.WriteAck(w, DurableInbound)).ConfigureAwait(false);
                    }
                }
            }
            finally
            {
                WireLock.Release();
            }

            foreach (var (_, done, _) in batch)
            {
                done.TrySetResult();
            }

            lock (_gate)
            {
                if (ReferenceEquals(_committing, batch))
                {
                    _committing = null; // its payloads are the store's and the socket's now
                }

                if (_pending.Count > 0)
                {
                    Signal();
                }
            }
        }
    }

    private async Task SendAckAsync()
    {
        await WireLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_session.Carrier is { } carrier)
            {
                await carrier.SendControlAsync(w => SessionFrameWriter.WriteAck(w, DurableInbound)).ConfigureAwait(false);
            }
        }
        finally
        {
            WireLock.Release();
        }
    }

    private void PutBack(List<PendingSend> batch, bool snapshot, bool ack, bool renew)
    {
        lock (_gate)
        {
            _pending.InsertRange(0, batch);
            _snapshotDirty |= snapshot;
            _ackRequested |= ack;
            _renew |= renew;
        }
    }

    /// <summary>
    /// The session ended on this node: removes it from the store, so that a resume on any node is told SessionLost
    /// rather than given a new handler for a session whose handler already returned. Fenced: nothing happens when
    /// another node owns the session now. A store that does not answer leaves the keys to expire with their TTL.
    /// </summary>
    public async Task EndInStoreAsync()
    {
        try
        {
            await _journal.EndAsync(Lease).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Best effort: the session is over here either way.
        catch (Exception e)
#pragma warning restore CA1031
        {
            SessionLog.StoreEndFailed(_manager.Logger, _session.Id, e.Message);
        }
    }

    private void FailPendingEnded() =>
        FailPending(new InvalidOperationException($"Session {_session.Id} ended before this send was stored."));

    /// <summary>A send waiting for its commit, and the inbound cursor as it stood once it was queued (its answer included).</summary>
    private readonly record struct PendingSend(SessionMessage Message, TaskCompletionSource Done, long InboundAfter);

    /// <summary>Ends a <see cref="BeginTakeover"/>: a commit that waited for it goes on with the writer's lease then.</summary>
    internal readonly struct TakeoverScope(SessionJournalWriter writer, TaskCompletionSource takeover) : IDisposable
    {
        public void Dispose() => writer.EndTakeover(takeover);
    }
}
