using System.Buffers;
using Lifeline.Session.Wire;

namespace Lifeline.Session;

/// <summary>
/// The outbound log of one session direction: numbers each message, keeps a pooled copy of its payload until the peer
/// acknowledges it, and hands the unacknowledged ones back for resending after a resume. Bounded by messages, bytes
/// and age (<see cref="ReplayBufferOptions"/>); when full the configured <see cref="ReplayBufferFullMode"/> applies.
/// </summary>
/// <remarks>
/// <para>Thread-safe: every member may be called from any thread; state changes under one lock.</para>
/// <para>
/// Ordering: sequence numbers are assigned in the order appends complete. A sender must put frames on the wire in
/// sequence order, and must send a resume's replayed frames (<see cref="BeginReplay"/>) before any newer message.
/// </para>
/// <para>
/// Memory: payload copies come from <see cref="ArrayPool{T}.Shared"/>; once acknowledged they go to a free list of this
/// buffer's own (at most <see cref="ReplayBufferOptions.MaxBytes"/> of arrays) that later appends take from first, or back
/// to the shared pool. A stream of sends keeps more copies alive at once than the shared pool keeps per size; the free list
/// makes its steady state allocation-free. It all goes back to the shared pool when the buffer is disposed (and, on a
/// server, beyond a small reserve whenever everything was acknowledged). A payload handed out by a <see cref="ReplayLease"/> stays valid until that lease is
/// disposed, even if an ack for it arrives meanwhile.
/// </para>
/// </remarks>
public sealed class ReplayBuffer : IDisposable
{
    private readonly ReplayBufferOptions _options;
    private readonly CoarseClock _clock;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private Entry[] _ring = []; // allocated by the first message: a session that sends nothing holds no ring
    private bool _disposed;
    private int _head;
    private int _count;
    private long _bytes;
    private long _lastSequence;
    private long _lastAcknowledged;
    private TaskCompletionSource? _spaceFreed;
    private ReplayBufferEnd? _end;
    private int _leases;
    private List<byte[]>? _deferredReturns;
    private Stack<byte[]>?[]? _free;
    private long _freeBytes;

    // A copy this long or shorter always gets the header room it is asked for, even in an array one size up.
    private const int SmallCopyLength = 1024;

    // The free list keeps copies up to 64 KiB, at most MaxBytes of arrays (so at most about twice the bound in all).
    private const int MaxRecycledLength = 64 * 1024;

    /// <summary>Creates an empty buffer.</summary>
    /// <param name="options">Bounds and full mode; read on every append, so later changes apply.</param>
    /// <param name="timeProvider">The clock for the age bound. Default <see cref="TimeProvider.System"/>.</param>
    /// <param name="lastAcknowledged">
    /// The sequence numbering continues after this value (0 for a new session; a restored session passes its
    /// acknowledged position, then <see cref="Restore"/>s its unacknowledged messages).
    /// </param>
    public ReplayBuffer(ReplayBufferOptions options, TimeProvider? timeProvider = null, long lastAcknowledged = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(lastAcknowledged);
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _clock = new CoarseClock(_time);
        _lastSequence = lastAcknowledged;
        _lastAcknowledged = lastAcknowledged;
    }

    /// <summary>The highest sequence number assigned (0 before the first message).</summary>
    public long LastSequence
    {
        get
        {
            lock (_lock)
            {
                return _lastSequence;
            }
        }
    }

    /// <summary>The highest sequence the peer acknowledged.</summary>
    public long LastAcknowledged
    {
        get
        {
            lock (_lock)
            {
                return _lastAcknowledged;
            }
        }
    }

    /// <summary>How many messages are held.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>How many payload bytes are held.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>The messages sent and not yet acknowledged.</summary>
    public SequenceRange Unacknowledged
    {
        get
        {
            lock (_lock)
            {
                return SequenceRange.FromBounds(_lastAcknowledged + 1, _lastSequence);
            }
        }
    }

    /// <summary>Why and with what loss the buffer ended; null while the session goes on.</summary>
    public ReplayBufferEnd? End
    {
        get
        {
            lock (_lock)
            {
                return _end;
            }
        }
    }

    /// <summary>
    /// Numbers a message and keeps a copy of its payload until acknowledged. Completes synchronously (no allocation)
    /// when there is room.
    /// </summary>
    /// <param name="payload">The application payload (copied; the caller keeps ownership).</param>
    /// <param name="isText">Whether it is UTF-8 text.</param>
    /// <param name="trackAcknowledgement">Whether to return a task that completes when the peer acknowledges the message.</param>
    /// <param name="cancellationToken">Bounds a wait for room in <see cref="ReplayBufferFullMode.Wait"/>.</param>
    /// <exception cref="ArgumentException">The payload alone is larger than <see cref="ReplayBufferOptions.MaxBytes"/>.</exception>
    /// <exception cref="ReplayBufferFullException">The buffer is full and the mode is <see cref="ReplayBufferFullMode.Fail"/>.</exception>
    /// <exception cref="ObjectDisposedException">The buffer was disposed.</exception>
    public ValueTask<ReplayAppendResult> AppendAsync(ReadOnlyMemory<byte> payload, bool isText, bool trackAcknowledgement = false, CancellationToken cancellationToken = default)
    {
        ThrowIfLargerThanTheBuffer(payload.Span);

        Task waitForSpace;
        lock (_lock)
        {
            if (TryAppendLocked(payload.Span, isText, trackAcknowledgement, out var result))
            {
                return new ValueTask<ReplayAppendResult>(result);
            }

            waitForSpace = WaitTaskLocked();
        }

        return WaitThenAppendAsync(waitForSpace, payload, isText, trackAcknowledgement, cancellationToken);
    }

    private void ThrowIfLargerThanTheBuffer(ReadOnlySpan<byte> payload)
    {
        if (payload.Length > _options.MaxBytes)
        {
            throw new ArgumentException(
                $"The message is {payload.Length} bytes but the replay buffer holds at most {_options.MaxBytes}; raise ReplayBufferOptions.MaxBytes or send smaller messages.",
                nameof(payload));
        }
    }

    /// <summary>
    /// <see cref="AppendAsync"/> without its wait: decides the append now (appended, or the session ended, or a throw in
    /// <see cref="ReplayBufferFullMode.Fail"/>), or returns false when it would wait for room. For a caller that numbers
    /// messages under a lock of its own and waits for room with <see cref="WaitForRoomAsync"/> outside it.
    /// </summary>
    /// <param name="payload">The application payload (copied).</param>
    /// <param name="isText">Whether it is UTF-8 text.</param>
    /// <param name="trackAcknowledgement">Whether the result carries a task that completes when the peer acknowledges it.</param>
    /// <param name="alsoWaitInFailMode">In <see cref="ReplayBufferFullMode.Fail"/>, return false when full (the caller waits, see <see cref="WaitForRoomAsync"/>) instead of throwing.</param>
    /// <param name="result">The decision, when true is returned.</param>
    /// <exception cref="ReplayBufferFullException">The buffer is full, the mode is <see cref="ReplayBufferFullMode.Fail"/> and <paramref name="alsoWaitInFailMode"/> is false.</exception>
    /// <exception cref="ObjectDisposedException">The buffer was disposed.</exception>
    internal bool TryAppend(ReadOnlySpan<byte> payload, bool isText, bool trackAcknowledgement, bool alsoWaitInFailMode, out ReplayAppendResult result)
    {
        ThrowIfLargerThanTheBuffer(payload);

        lock (_lock)
        {
            if (alsoWaitInFailMode && _options.FullMode == ReplayBufferFullMode.Fail && _end is null && !_disposed && !HasRoomLocked(payload.Length, alsoInFailMode: true))
            {
                result = default;
                return false;
            }

            return TryAppendLocked(payload, isText, trackAcknowledgement, out result);
        }
    }

    /// <summary>
    /// Numbers a message and keeps a copy of it, when that needs no wait and no decision: there is room, the buffer has not
    /// ended and no acknowledgement is tracked. The copy starts at <paramref name="offset"/> in <paramref name="buffer"/>:
    /// <paramref name="headroom"/> when that many bytes in front of it (room for a frame header) cost no bigger array or the
    /// array is small anyway (at most <see cref="SmallCopyLength"/>), else 0: the caller then builds the frame in an array of
    /// its own, a second copy on every send, which for small messages (where most sizes plus a header pass a power of two)
    /// costs more than the few bytes it saves.
    /// It stays valid, as with a lease, until <see cref="EndWrite"/>: write the frame from it, then call that.
    /// </summary>
    /// <returns>False when the append must take the general path (<see cref="AppendAsync"/>); nothing changed then.</returns>
    internal bool TryAppendForWrite(ReadOnlySpan<byte> payload, bool isText, int headroom, out long sequence, out byte[] buffer, out int offset)
    {
        offset = payload.Length + headroom <= SmallCopyLength || Bucket(payload.Length + headroom) == Bucket(payload.Length) ? headroom : 0;
        lock (_lock)
        {
            if (_disposed || payload.Length > _options.MaxBytes)
            {
                (sequence, buffer) = (0, []);
                return false;
            }

            ExpireLocked();
            if (_end is not null || _count + 1 > _options.MaxMessages || _bytes + payload.Length > _options.MaxBytes)
            {
                (sequence, buffer) = (0, []);
                return false;
            }

            buffer = AddLocked(payload, isText, null, offset);
            sequence = _lastSequence;
            _leases++;
            return true;
        }
    }

    /// <summary>
    /// For a sender about to queue a message the buffer did not take at once: in <see cref="ReplayBufferFullMode.Fail"/>
    /// a full buffer throws here, to that sender, instead of later in the send queue's writer where nobody can catch it.
    /// </summary>
    /// <exception cref="ReplayBufferFullException">The buffer is full and the mode is <see cref="ReplayBufferFullMode.Fail"/>.</exception>
    internal void ThrowIfFullInFailMode(int length)
    {
        if (_options.FullMode != ReplayBufferFullMode.Fail)
        {
            return;
        }

        lock (_lock)
        {
            ExpireLocked();
            if (_end is null && !_disposed && (_count + 1 > _options.MaxMessages || _bytes + length > _options.MaxBytes))
            {
                throw FullLocked();
            }
        }
    }

    private ReplayBufferFullException FullLocked() => new(
        $"The replay buffer is full ({_count} messages, {_bytes} bytes unacknowledged; limits {_options.MaxMessages} and {_options.MaxBytes}). " +
        "The peer is not acknowledging fast enough: raise the limits, or choose ReplayBufferFullMode.Wait or EndSession.");

    /// <summary>The write of a message appended by <see cref="TryAppendForWrite"/> is over: its copy may be released once acknowledged.</summary>
    internal void EndWrite() => EndLease();

    /// <summary>
    /// Applies a cumulative acknowledgement: releases every message up to <paramref name="ack"/> and returns their
    /// buffers to the pool. Never corrupts state: an ack beyond what was sent is reported, not applied.
    /// </summary>
    public ReplayAckResult Acknowledge(long ack)
    {
        lock (_lock)
        {
            if (ack > _lastSequence)
            {
                return new ReplayAckResult(ReplayAckStatus.BeyondSent, SequenceRange.Empty, 0);
            }

            if (ack <= _lastAcknowledged || _end is not null)
            {
                return new ReplayAckResult(ReplayAckStatus.Unchanged, SequenceRange.Empty, 0);
            }

            var released = SequenceRange.FromBounds(_lastAcknowledged + 1, ack);
            long releasedBytes = 0;
            for (var i = 0; i < released.Count; i++)
            {
                ref var entry = ref _ring[_head];
                releasedBytes += entry.Length;
                entry.Acknowledged?.TrySetResult(true);
                ReturnLocked(entry.Buffer);
                entry = default;
                _head = (_head + 1) % _ring.Length;
            }

            _count -= (int)released.Count;
            _bytes -= releasedBytes;
            _lastAcknowledged = ack;
            if (_count == 0 && _leases == 0)
            {
                TrimFreeLocked(IdleFreeBytes); // everything acknowledged: an idle session keeps few spare copies
            }

            SignalSpaceLocked();
            return new ReplayAckResult(ReplayAckStatus.Advanced, released, releasedBytes);
        }
    }

    /// <summary>
    /// Takes the messages after <paramref name="afterSequence"/> (the peer's last received) for resending, in order.
    /// Dispose the lease when they are sent: payloads stay valid until then.
    /// </summary>
    /// <param name="afterSequence">The last sequence the peer says it received. Apply it with <see cref="Acknowledge"/> first.</param>
    /// <param name="lease">The messages when the result is <see cref="ReplayStatus.Ready"/>; null otherwise.</param>
    public ReplayStatus BeginReplay(long afterSequence, out ReplayLease? lease)
    {
        lease = null;
        lock (_lock)
        {
            if (_end is not null)
            {
                return ReplayStatus.Ended;
            }

            if (afterSequence > _lastSequence)
            {
                return ReplayStatus.BeyondSent;
            }

            if (afterSequence < _lastAcknowledged)
            {
                return ReplayStatus.Unavailable; // released on an earlier ack: the peer forgot what it acknowledged
            }

            var skip = (int)(afterSequence - _lastAcknowledged);
            var frames = new ReplayFrame[_count - skip];
            for (var i = 0; i < frames.Length; i++)
            {
                ref var entry = ref _ring[(_head + skip + i) % _ring.Length];
                frames[i] = new ReplayFrame(afterSequence + 1 + i, entry.IsText, entry.Buffer.AsMemory(entry.Offset, entry.Length));
            }

            _leases++;
            lease = new ReplayLease(this, frames);
            return ReplayStatus.Ready;
        }
    }

    /// <summary>
    /// Takes <paramref name="downtime"/>, the time the link was down before a resume, off the age of every message held:
    /// nobody could acknowledge them then. A client calls it as its resume succeeds; else a resume after an outage longer
    /// than <see cref="ReplayBufferOptions.MaxAge"/> succeeded and the next send ended the session at once, reporting the
    /// messages it had just resent as unconfirmed. Only the time down is taken off: a link that keeps dropping still
    /// reaches the bound with the time it was up.
    /// </summary>
    internal void ForgiveDowntime(TimeSpan downtime)
    {
        if (downtime <= TimeSpan.Zero)
        {
            return;
        }

        lock (_lock)
        {
            for (var i = 0; i < _count; i++)
            {
                ref var entry = ref _ring[(_head + i) % _ring.Length];
                var connectedAge = _clock.Since(entry.Timestamp) - downtime;
                entry = entry with { Timestamp = _clock.Ago(connectedAge > TimeSpan.Zero ? connectedAge : TimeSpan.Zero) };
            }
        }
    }

    /// <summary>
    /// Ends the session if the oldest unacknowledged message is older than <see cref="ReplayBufferOptions.MaxAge"/>.
    /// Appends check this too; call it from a timer to notice expiry while nothing is sent.
    /// </summary>
    /// <returns>The end, when this call or an earlier event ended the buffer; null while the session goes on.</returns>
    public ReplayBufferEnd? CheckAge()
    {
        lock (_lock)
        {
            ExpireLocked();
            return _end;
        }
    }

    /// <summary>
    /// Ends the session for <paramref name="reason"/>: releases every held buffer, completes acknowledgement tasks with
    /// false and wakes waiting appends (they report <see cref="ReplayAppendStatus.SessionEnded"/>). Idempotent: the
    /// first end wins.
    /// </summary>
    /// <returns>The end (with the messages that stay unconfirmed).</returns>
    public ReplayBufferEnd EndSession(SessionLostReason reason)
    {
        lock (_lock)
        {
            return EndLocked(reason);
        }
    }

    /// <summary>
    /// Puts back an unacknowledged message of a restored session (from a store snapshot), keeping its sequence number.
    /// Messages must be restored in order, each one more than <see cref="LastSequence"/>. Bounds are not applied: a
    /// restored message is never dropped.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sequence"/> is not the next sequence.</exception>
    public void Restore(long sequence, bool isText, ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (sequence != _lastSequence + 1)
            {
                throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"Restore messages in order: the next sequence is {_lastSequence + 1}.");
            }

            AddLocked(payload, isText, null, 0);
        }
    }

    /// <summary>
    /// Ends every wait for an acknowledgement with <paramref name="error"/>: the buffer's owner will not learn of one any
    /// more (a server session handed to the store by a drain). The messages themselves stay.
    /// </summary>
    internal void FailAcknowledgementWaits(Exception error)
    {
        lock (_lock)
        {
            for (var i = 0; i < _count; i++)
            {
                _ring[(_head + i) % _ring.Length].Acknowledged?.TrySetException(error);
            }
        }
    }

    /// <summary>Copies the unacknowledged messages (for a store snapshot), oldest first.</summary>
    public IReadOnlyList<SessionMessage> SnapshotUnacknowledged()
    {
        lock (_lock)
        {
            var messages = new SessionMessage[_count];
            for (var i = 0; i < _count; i++)
            {
                ref var entry = ref _ring[(_head + i) % _ring.Length];
                messages[i] = new SessionMessage(_lastAcknowledged + 1 + i, entry.IsText, entry.Buffer.AsSpan(entry.Offset, entry.Length).ToArray());
            }

            return messages;
        }
    }

    /// <summary>Releases every held buffer. Acknowledgement tasks complete with false, waiting appends throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            ReleaseAllLocked();
            _disposed = true;
            ReleaseFreeLocked();
            _ring = [];
            _spaceFreed?.TrySetException(new ObjectDisposedException(nameof(ReplayBuffer)));
            _spaceFreed = null;
        }
    }

    internal void EndLease()
    {
        lock (_lock)
        {
            if (--_leases == 0 && _deferredReturns is { } deferred)
            {
                foreach (var buffer in deferred)
                {
                    RecycleLocked(buffer);
                }

                deferred.Clear();
            }
        }
    }

    /// <summary>
    /// Completes when an append of <paramref name="length"/> bytes would not wait: there is room, or the mode is not
    /// <see cref="ReplayBufferFullMode.Wait"/>, or the buffer ended or was disposed (the append then reports it). Lets a
    /// caller that serialises appends under its own lock wait for room without holding that lock, since the room comes
    /// from acknowledgements that may need the same lock to arrive (a resume replays under it).
    /// </summary>
    /// <param name="length">The payload's length.</param>
    /// <param name="cancellationToken">Bounds the wait.</param>
    /// <param name="alsoInFailMode">
    /// Wait for room in <see cref="ReplayBufferFullMode.Fail"/> as well: for a message already accepted (queued), whose
    /// sender can no longer be told, so that it waits instead of being dropped.
    /// </param>
    internal async ValueTask WaitForRoomAsync(int length, CancellationToken cancellationToken, bool alsoInFailMode = false)
    {
        while (true)
        {
            Task waitForSpace;
            lock (_lock)
            {
                ExpireLocked();
                if (HasRoomLocked(length, alsoInFailMode))
                {
                    return;
                }

                waitForSpace = WaitTaskLocked();
            }

            try
            {
                await WaitForSpaceOrExpiryAsync(waitForSpace, cancellationToken).ConfigureAwait(false); // the next round ends an expired buffer
            }
            catch (ObjectDisposedException)
            {
                return; // the append reports it
            }
        }
    }

    /// <summary>
    /// What the free list keeps once everything was acknowledged. Default: everything (up to MaxBytes), so a stream whose
    /// acks often catch up with its sends does not hand its arrays back and allocate them anew at each catch-up: right for
    /// a client's one session. A server holding many mostly idle sessions sets it low.
    /// </summary>
    internal long IdleFreeBytes { get; set; } = long.MaxValue;

    /// <summary>
    /// <see cref="LastAcknowledged"/> without the lock, for a receiver to skip <see cref="Acknowledge"/> when a frame's ack
    /// is not new (most are not: acks are batched and piggy-backed on every frame). It only grows.
    /// </summary>
    internal long LastAcknowledgedHint => Volatile.Read(ref _lastAcknowledged);

    /// <summary>Whether an append or <see cref="WaitForRoomAsync"/> is waiting for room (for acknowledgements).</summary>
    internal bool HasWaiters
    {
        get
        {
            lock (_lock)
            {
                return _spaceFreed is not null;
            }
        }
    }

    /// <summary>Whether an append of <paramref name="length"/> bytes would complete without waiting; see <see cref="WaitForRoomAsync"/>.</summary>
    internal bool HasRoomFor(int length)
    {
        lock (_lock)
        {
            return HasRoomLocked(length);
        }
    }

    private bool HasRoomLocked(int length, bool alsoInFailMode = false) =>
        !(_options.FullMode == ReplayBufferFullMode.Wait || (alsoInFailMode && _options.FullMode == ReplayBufferFullMode.Fail)) ||
        _end is not null || _disposed || length > _options.MaxBytes ||
        (_count + 1 <= _options.MaxMessages && _bytes + length <= _options.MaxBytes);

    private async ValueTask<ReplayAppendResult> WaitThenAppendAsync(Task waitForSpace, ReadOnlyMemory<byte> payload, bool isText, bool trackAcknowledgement, CancellationToken cancellationToken)
    {
        while (true)
        {
            await WaitForSpaceOrExpiryAsync(waitForSpace, cancellationToken).ConfigureAwait(false); // the append below ends an expired buffer
            lock (_lock)
            {
                if (TryAppendLocked(payload.Span, isText, trackAcknowledgement, out var result))
                {
                    return result;
                }

                waitForSpace = WaitTaskLocked();
            }
        }
    }

    // A wait for room also ends when the oldest message passes MaxAge: else a peer that stays connected but never
    // acknowledges (a suspended tab) held a full buffer's sender for as long as its socket lived. The caller then checks
    // the age under the lock.
    private async Task WaitForSpaceOrExpiryAsync(Task waitForSpace, CancellationToken cancellationToken)
    {
        TimeSpan untilExpiry;
        lock (_lock)
        {
            untilExpiry = _count == 0 ? Timeout.InfiniteTimeSpan : _options.MaxAge - _clock.Since(_ring[_head].Timestamp) + TimeSpan.FromMilliseconds(1);
        }

        if (untilExpiry != Timeout.InfiniteTimeSpan)
        {
            untilExpiry = untilExpiry < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : untilExpiry > OptionGuard.LongestTimer ? OptionGuard.LongestTimer : untilExpiry;
        }

        try
        {
            await waitForSpace.WaitAsync(untilExpiry, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The oldest message reached MaxAge.
        }
    }

    // Returns true with a result when the append is decided (appended or session ended); false when it must wait.
    private bool TryAppendLocked(ReadOnlySpan<byte> payload, bool isText, bool trackAcknowledgement, out ReplayAppendResult result)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ExpireLocked();
        if (_end is not null)
        {
            result = new ReplayAppendResult(ReplayAppendStatus.SessionEnded, 0, null);
            return true;
        }

        if (_count + 1 > _options.MaxMessages || _bytes + payload.Length > _options.MaxBytes)
        {
            switch (_options.FullMode)
            {
                case ReplayBufferFullMode.Fail:
                    throw FullLocked();
                case ReplayBufferFullMode.EndSession:
                    EndLocked(SessionLostReason.BufferFull);
                    result = new ReplayAppendResult(ReplayAppendStatus.SessionEnded, 0, null);
                    return true;
                default:
                    result = default;
                    return false;
            }
        }

        var acknowledged = trackAcknowledgement ? new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously) : null;
        AddLocked(payload, isText, acknowledged, 0);
        result = new ReplayAppendResult(ReplayAppendStatus.Appended, _lastSequence, acknowledged?.Task);
        return true;
    }

    private byte[] AddLocked(ReadOnlySpan<byte> payload, bool isText, TaskCompletionSource<bool>? acknowledged, int headroom)
    {
        if (_count == _ring.Length)
        {
            var grown = new Entry[Math.Max(_ring.Length * 2, Math.Min(16, _options.MaxMessages))];
            for (var i = 0; i < _count; i++)
            {
                grown[i] = _ring[(_head + i) % _ring.Length];
            }

            _ring = grown;
            _head = 0;
        }

        var buffer = payload.IsEmpty && headroom == 0 ? [] : RentLocked(headroom + payload.Length);
        payload.CopyTo(buffer.AsSpan(headroom));
        _ring[(_head + _count) % _ring.Length] = new Entry(buffer, headroom, payload.Length, isText, _clock.Now(), acknowledged);
        _count++;
        _bytes += payload.Length;
        _lastSequence++;
        return buffer;
    }

    private void ExpireLocked()
    {
        if (_end is null && _count > 0 && _clock.Since(_ring[_head].Timestamp) > _options.MaxAge)
        {
            EndLocked(SessionLostReason.Expired);
        }
    }

    private ReplayBufferEnd EndLocked(SessionLostReason reason)
    {
        if (_end is { } existing)
        {
            return existing;
        }

        var end = new ReplayBufferEnd(reason, SequenceRange.FromBounds(_lastAcknowledged + 1, _lastSequence));
        _end = end;
        ReleaseAllLocked();
        SignalSpaceLocked();
        return end;
    }

    private void ReleaseAllLocked()
    {
        for (var i = 0; i < _count; i++)
        {
            ref var entry = ref _ring[(_head + i) % _ring.Length];
            entry.Acknowledged?.TrySetResult(false);
            ReturnLocked(entry.Buffer);
            entry = default;
        }

        _head = 0;
        _count = 0;
        _bytes = 0;
    }

    private void ReturnLocked(byte[] buffer)
    {
        if (buffer.Length == 0)
        {
            return;
        }

        if (_leases > 0)
        {
            (_deferredReturns ??= []).Add(buffer); // a replay or a write may still be reading it
        }
        else
        {
            RecycleLocked(buffer);
        }
    }

    // Payload copies cycle through a small free list of this buffer's own (a stream of sends keeps many copies alive at
    // once, more than the shared pool keeps per size, which would then allocate one per message). What the list does not
    // keep goes back to the shared pool.
    private byte[] RentLocked(int length)
    {
        if (length <= MaxRecycledLength && _free?[Bucket(length)] is { Count: > 0 } free)
        {
            var buffer = free.Pop();
            _freeBytes -= buffer.Length;
            return buffer;
        }

        return ArrayPool<byte>.Shared.Rent(length);
    }

    private void RecycleLocked(byte[] buffer)
    {
        // Only the shared pool's own sizes (powers of two) are kept, so every buffer in a bucket fits any rent of it.
        if (buffer.Length <= MaxRecycledLength && System.Numerics.BitOperations.IsPow2(buffer.Length) && _freeBytes + buffer.Length <= _options.MaxBytes && !_disposed)
        {
            _free ??= new Stack<byte[]>?[Bucket(MaxRecycledLength) + 1];
            (_free[Bucket(buffer.Length)] ??= new Stack<byte[]>()).Push(buffer);
            _freeBytes += buffer.Length;
        }
        else
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // The power of two a length rounds up to (at least 16, the shared pool's smallest array).
    private static int Bucket(int length) => 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)Math.Max(length - 1, 15));

    // Gives back to the shared pool what the free list holds beyond keep bytes, biggest arrays first.
    private void TrimFreeLocked(long keep)
    {
        if (_free is not { } free)
        {
            return;
        }

        for (var i = free.Length - 1; i >= 0 && _freeBytes > keep; i--)
        {
            while (_freeBytes > keep && free[i] is { } bucket && bucket.TryPop(out var buffer))
            {
                _freeBytes -= buffer.Length;
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private void ReleaseFreeLocked()
    {
        if (_free is { } free)
        {
            foreach (var bucket in free)
            {
                while (bucket is not null && bucket.TryPop(out var buffer))
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }

            _freeBytes = 0;
        }
    }

    private Task WaitTaskLocked()
    {
        _spaceFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _spaceFreed.Task;
    }

    private void SignalSpaceLocked()
    {
        _spaceFreed?.TrySetResult();
        _spaceFreed = null;
    }

    private readonly record struct Entry(byte[] Buffer, int Offset, int Length, bool IsText, long Timestamp, TaskCompletionSource<bool>? Acknowledged);
}

/// <summary>
/// Messages taken for resending by <see cref="ReplayBuffer.BeginReplay"/>. Their payloads stay valid until
/// <see cref="Dispose"/>; dispose once they are sent (or the send failed).
/// </summary>
/// <remarks>Not thread-safe; one sender reads it. Dispose is idempotent.</remarks>
public sealed class ReplayLease : IDisposable
{
    private ReplayBuffer? _owner;

    internal ReplayLease(ReplayBuffer owner, ReplayFrame[] frames)
    {
        _owner = owner;
        Frames = frames;
    }

    /// <summary>The messages to resend, in sequence order.</summary>
    public IReadOnlyList<ReplayFrame> Frames { get; }

    /// <summary>Lets the buffer return acknowledged payloads to the pool.</summary>
    public void Dispose() => Interlocked.Exchange(ref _owner, null)?.EndLease();
}

/// <summary>An unacknowledged message as a store keeps it.</summary>
/// <param name="Sequence">Its sequence number.</param>
/// <param name="IsText">Whether the payload is text.</param>
/// <param name="Payload">The payload (owned by this value).</param>
public sealed record SessionMessage(long Sequence, bool IsText, ReadOnlyMemory<byte> Payload);
