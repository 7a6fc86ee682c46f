using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text;
using System.Threading.Channels;
using Lifeline.Session;
using Lifeline.Session.Store;
using Lifeline.Session.Wire;

namespace Lifeline.AspNetCore;

/// <summary>
/// One logical session on a <c>MapLifelineSession</c> endpoint. Its handler runs once per session, not once per socket:
/// this object stays valid while the socket under it is replaced. Sends are numbered, kept in the session's replay
/// buffer until the client acknowledges them, and resent after a resume; <see cref="Messages"/> delivers every client
/// message once and in order. <see cref="State"/> and <see cref="Groups"/> travel with the session across a graceful
/// restart (drain file) and, with a shared store, across nodes.
/// </summary>
/// <remarks>
/// <para>Thread-safe. Sends are serialised per session (so sequence order is wire order).</para>
/// <para>
/// Plain mode: a client that does not offer <c>lifeline.v1</c> on a session endpoint gets a non-resumable session
/// (<see cref="IsResumable"/> false) whose messages pass through unframed and which ends with its socket.
/// </para>
/// <para>
/// End to end: a message counts as delivered (and is acknowledged) once the handler has finished with it, that is when
/// it sends its answer (its first send after reading it) or asks <see cref="Messages"/> for the next one; unread
/// messages at a drain are not acknowledged, so the client resends them to the next process, and a drain waits briefly
/// for the handler to finish the message it holds.
/// </para>
/// <para>
/// The session ends when the handler returns; what the client has not acknowledged goes out first. If its link is down
/// then, the session waits (the rest of its resume window, no handler, no groups) for the resume that delivers it, and
/// then ends; with a shared store, during a drain or after a handler that failed it ends at once, and a restart before
/// the resume loses it. To know a last message arrived, await
/// <see cref="SendAndWaitAckAsync"/> before returning.
/// </para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore and token source own no timers or handles; the manager releases the session's pooled buffers when it ends.")]
public sealed class LifelineSession
{
    private const int NotEnded = 0;
    private const int Ended = 1;
    private const int EndedClientTold = 2;

    private readonly LifelineSessionManager _manager;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private long _lastEnqueued;
    private readonly CancellationTokenSource _ending = new();
    private ConcurrentDictionary<string, byte>? _groups; // created by the first group: most sessions join none
    private readonly LifelineConnection? _plain;
    private SessionCarrier? _carrier;
    private int _ended; // NotEnded, Ended or EndedClientTold: one word, so whoever ends the session also says whether the client is told
    private int _forgotten;
    private int _handlerReturned;
    private long _generation;

    internal LifelineSession(LifelineSessionManager manager, SessionId id, ResumeTokenHash tokenHash, string? userId, ClaimsPrincipal? user,
        bool isResumed, ReplayBuffer replay, InboundSequencer inbound, SessionStateBag state, IEnumerable<string> groups,
        DateTimeOffset createdAt, int inboxCapacity, long inboxMaxBytes, LifelineConnection? plain = null)
    {
        _manager = manager;
        Id = id;
        TokenHash = tokenHash;
        UserId = userId;
        User = user;
        IsResumed = isResumed;
        Replay = replay;
        Inbound = inbound;
        State = state;
        state.Changed = OnStateChanged;
        CreatedAt = createdAt;
        _plain = plain;
        Inbox = new SessionInbox(this, inboxCapacity, inboxMaxBytes);
        LastEnqueued = inbound.LastDelivered;
        foreach (var group in groups)
        {
            GroupSet.TryAdd(group, 0);
        }
    }

    /// <summary>The session id (not a secret; fine for logs).</summary>
    public SessionId Id { get; }

    /// <summary>
    /// True when this handler run continues a session that existed before it: restored from the store after a restart
    /// (drain file) or on another node. <see cref="State"/> and <see cref="Groups"/> then hold what the previous run left.
    /// </summary>
    public bool IsResumed { get; }

    /// <summary>False for a plain-mode session (the client did not offer <c>lifeline.v1</c>): it ends with its socket.</summary>
    public bool IsResumable => _plain is null;

    /// <summary>The authenticated user the session is bound to (name identifier or name claim); null when anonymous.</summary>
    public string? UserId { get; }

    /// <summary>The user of the connection that started or most recently resumed the session, if known.</summary>
    public ClaimsPrincipal? User { get; private set; }

    /// <summary>When the session started.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>The application's small, bounded key-value state; it travels with the session.</summary>
    public SessionStateBag State { get; }

    /// <summary>The groups the session belongs to; they travel with the session.</summary>
    public IReadOnlyCollection<string> Groups => GroupNames();

    /// <summary>Messages from the client, each once and in order across sockets. Completes when the session ends.</summary>
    /// <remarks>
    /// A handler that waits here for the next message is handed it on the thread that read it from the socket, and runs
    /// there until its next await (its next read, for a handler that answers and reads on): that saves a thread-pool hop
    /// per message. So do not block between reads (no <c>.Wait()</c>, <c>.Result</c> or long synchronous work): the
    /// socket's reading, the acks that a send waiting for room needs among it, waits until the handler awaits.
    /// </remarks>
    public ChannelReader<LifelineMessage> Messages => Inbox;

    /// <summary>Cancelled when the session ends (window expired, lost, handler done) or is handed to the store by a drain.</summary>
    public CancellationToken Ending => _ending.Token;

    /// <summary>Whether a socket carries the session now.</summary>
    public bool IsConnected => _plain is not null || Volatile.Read(ref _carrier) is not null;

    /// <summary>The connection carrying the session now, if any.</summary>
    public LifelineConnection? Connection => _plain ?? Volatile.Read(ref _carrier)?.Connection;

    /// <summary>The last sequence sent to the client (0 before the first message).</summary>
    public long LastSentSequence => Replay.LastSequence;

    /// <summary>How many sent messages are not acknowledged yet, and their payload bytes.</summary>
    public (int Messages, long Bytes) Unacknowledged => (Replay.Count, Replay.Bytes);

    internal ResumeTokenHash TokenHash { get; }

    internal ReplayBuffer Replay { get; }

    internal InboundSequencer Inbound { get; }

    internal SessionInbox Inbox { get; }

    /// <summary>The last client sequence put in the inbox (duplicates at or below it are dropped). Owned by the carrier loop.</summary>
    internal long LastEnqueued
    {
        get => Volatile.Read(ref _lastEnqueued);
        set => Volatile.Write(ref _lastEnqueued, value);
    }

    internal bool IsEnded => Volatile.Read(ref _ended) != 0;

    /// <summary>
    /// The server ended the session and sent the client SessionLost on the socket it had: the client now either closes or
    /// starts its next session on that socket (protocol 5.7), so the carrier must take a new Hello there.
    /// </summary>
    internal bool ClientToldLost => Volatile.Read(ref _ended) == EndedClientTold;

    internal bool IsFrozen { get; private set; }

    internal Lock SyncRoot { get; } = new();

    internal SemaphoreSlim SendLock => _sendLock;

    /// <summary>
    /// Taken by a socket's carrier to check a client message's sequence and hand it to the inbox. While a resume takes the
    /// session over, the old socket's carrier may still hold frames it read: one carrier at a time, and only the
    /// session's current one, delivers (two at once could deliver a message twice or out of order).
    /// </summary>
    internal SemaphoreSlim InboundTurn { get; } = new(1, 1);

    internal SessionCarrier? Carrier => Volatile.Read(ref _carrier);

    internal long Generation => Interlocked.Read(ref _generation);

    /// <summary>The writer to the shared store (Redis), when one is registered; null with the in-memory store.</summary>
    internal SessionJournalWriter? Journal { get; set; }

    // Under the send lock: a send that updates the state commits it with its message, not ahead of it.
    private bool _stateUpdatedBySend;

    /// <summary>
    /// A direct change of <see cref="State"/> (not through a send that updates it): with a shared store, the next commit
    /// carries it, so a resume on another node after a crash finds it, not only one after a drain.
    /// </summary>
    private void OnStateChanged()
    {
        // Frozen by a drain (its final commit carries the state) or ended: nothing more is committed from here.
        if (!Volatile.Read(ref _stateUpdatedBySend) && !IsFrozen && !IsEnded)
        {
            Journal?.MarkSnapshotDirty();
        }
    }

    private void UpdateStateForSend(Action<SessionStateBag> updateState)
    {
        Volatile.Write(ref _stateUpdatedBySend, true);
        try
        {
            updateState(State);
        }
        finally
        {
            Volatile.Write(ref _stateUpdatedBySend, false);
        }
    }

    /// <summary>
    /// Completes once the last group message from another node (the fan-out) handed to this session has its sequence
    /// number (or its send ended); null when it had one at once. The next one waits for it, so they keep their order.
    /// Only the node's fan-out subscription, one message at a time, sets it.
    /// </summary>
    internal Task? FanoutPlaced { get; set; }

    /// <summary>How many fan-out messages wait behind <see cref="FanoutPlaced"/> (changed with Interlocked).</summary>
    internal int FanoutWaiting;

    /// <summary>Their payload bytes (changed with Interlocked).</summary>
    internal long FanoutWaitingBytes;

    /// <summary>The ack the client may see: what the store recorded as delivered, or (no shared store) what the handler read.</summary>
    internal long AckToSend => Journal?.DurableInbound ?? Inbound.TakeAck();

    private ConcurrentDictionary<string, byte> GroupSet =>
        Volatile.Read(ref _groups) ?? Interlocked.CompareExchange(ref _groups, new(StringComparer.Ordinal), null) ?? _groups;

    /// <summary>Whether the session is in the group now (a fan-out message that waited checks it when its turn comes).</summary>
    internal bool IsInGroup(string group) => Volatile.Read(ref _groups) is { } groups && groups.ContainsKey(group);

    private string[] GroupNames() => Volatile.Read(ref _groups) is { } groups ? [.. groups.Keys] : [];

    /// <summary>
    /// Adds the session to a group: group sends of <see cref="LifelineSessionManager"/> reach it, replayed like any send.
    /// No effect once the session has ended.
    /// </summary>
    public void JoinGroup(string group)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(group);
        if (IsEnded)
        {
            return; // its groups were left when it ended: joining now would leave it in the group table for good
        }

        // The record here and the table entry change together: a LeaveGroup in between would otherwise remove the record,
        // find no entry yet, and leave an entry that no end removes.
        var groups = GroupSet;
        bool joined;
        lock (groups)
        {
            joined = groups.TryAdd(group, 0);
            if (joined)
            {
                JoinRecordedForTest?.Invoke();
                _manager.AddToGroup(group, this);
            }
        }

        if (joined)
        {
            if (IsEnded)
            {
                // Ended meanwhile: the end may have left its groups before this one was added, so leave it here.
                _manager.RemoveFromGroup(group, this);
                return;
            }

            Journal?.MarkSnapshotDirty();
        }
    }

    /// <summary>Removes the session from a group.</summary>
    public void LeaveGroup(string group)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(group);
        if (Volatile.Read(ref _groups) is not { } groups)
        {
            return;
        }

        lock (groups)
        {
            if (!groups.TryRemove(group, out _))
            {
                return;
            }

            _manager.RemoveFromGroup(group, this);
        }

        Journal?.MarkSnapshotDirty();
    }

    /// <summary>Tests: runs in <see cref="JoinGroup"/> between the session's own record of the group and the table entry.</summary>
    internal Action? JoinRecordedForTest { get; set; }

    /// <summary>Sends a text message; see <see cref="SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, CancellationToken)"/>.</summary>
    public ValueTask SendTextAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        return SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);
    }

    /// <summary>
    /// Numbers the message, keeps it until the client acknowledges it and writes it to the current socket, if any (else it
    /// waits in the replay buffer for the resume). Completes when it is kept and queued, not when acknowledged.
    /// </summary>
    /// <remarks>
    /// Sent by the handler (or a task or timer it started, while it runs) when it holds a message, this is the answer
    /// to that message, which then counts as delivered and is acknowledged with it. Sent from elsewhere, such as a
    /// background service pushing to the session, it answers nothing: the message the handler holds counts as delivered
    /// once the handler answers it or reads on, so a crash in between makes the client send it again. A push loop the
    /// handler starts itself sends with <see cref="PushAsync(ReadOnlyMemory{byte}, WebSocketMessageType, CancellationToken)"/>.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The session has ended or was handed to the store by a drain.</exception>
    /// <exception cref="ReplayBufferFullException">The replay buffer is full and its mode is Fail.</exception>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default)
    {
        // The usual case takes no asynchronous step: a session kept in memory whose send lock is free.
        if (_plain is null && Journal is null && type != WebSocketMessageType.Close && !cancellationToken.IsCancellationRequested && _sendLock.Wait(0, CancellationToken.None))
        {
            return SendHoldingLock(data, type, cancellationToken);
        }

        return SendWaitingAsync(data, type, cancellationToken);
    }

    private async ValueTask SendWaitingAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken) =>
        await SendCoreAsync(data, type, false, null, answersHanded: true, numbered: null, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// <see cref="SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, CancellationToken)"/> with the send lock taken at
    /// once: numbers the message and keeps it in the replay buffer, which leaves room for the frame header in front of its
    /// copy, and queues the frame built there on the socket. Whatever would wait or decide something (a full replay
    /// buffer, a session ended or frozen) goes the general way, <see cref="SendCoreAsync"/>, with nothing done yet.
    /// </summary>
    private ValueTask SendHoldingLock(ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken)
    {
        var isText = type == WebSocketMessageType.Text;
        long sequence = 0;
        byte[] buffer = [];
        var offset = 0;
        bool appended;
        try
        {
            appended = !IsFrozen && !IsEnded &&
                Replay.TryAppendForWrite(data.Span, isText, SessionFrameWriter.MaxDataHeaderLength, out sequence, out buffer, out offset);
        }
        catch
        {
            _sendLock.Release(); // nothing was appended: never leave the lock taken
            throw;
        }

        if (!appended)
        {
            _sendLock.Release();
            return SendWaitingAsync(data, type, cancellationToken);
        }

        var answered = false;
        var frame = default(DataFrameInPlace);
        var endHere = true;
        try
        {
            answered = Inbox.AcceptHandedForSend(); // under the send lock, as in SendCoreAsync: a drain's snapshot has both or neither
            if (Volatile.Read(ref _carrier) is { } carrier)
            {
                frame = DataFrameInPlace.Build(buffer, offset, data.Length, sequence, AckToSend, isText);
                if (!carrier.Connection.TryQueueNow(frame.Bytes, WebSocketMessageType.Binary))
                {
                    endHere = false;
                    return QueueThenEndSendAsync(carrier, frame, answered);
                }
            }

            // No socket: the message waits in the replay buffer for the resume.
            return default;
        }
        finally
        {
            if (endHere)
            {
                EndSend(frame, answered);
            }
        }
    }

    /// <summary>The socket's outbound buffer was full (or the socket is closing): waits for room there, still holding the send lock.</summary>
    private async ValueTask QueueThenEndSendAsync(SessionCarrier carrier, DataFrameInPlace frame, bool answered)
    {
        try
        {
            await carrier.Connection.SendAsync(frame.Bytes, WebSocketMessageType.Binary, CancellationToken.None).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // The socket is closing: the message stays in the replay buffer for the resume.
        }
        finally
        {
            EndSend(frame, answered);
        }
    }

    private void EndSend(DataFrameInPlace frame, bool answered)
    {
        frame.Return();
        Replay.EndWrite();
        _sendLock.Release();
        if (answered)
        {
            Inbox.RaiseDelivered();
        }
    }

    /// <summary>
    /// Sends a message and updates <see cref="State"/> in the same step: a drain saves both or neither, so an application
    /// that keeps its position in the state (a stream counter) neither skips nor repeats a message across a restart.
    /// </summary>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type, Action<SessionStateBag> updateState, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(updateState);
        await SendCoreAsync(data, type, false, updateState, answersHanded: true, numbered: null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends a message that answers nothing: like <see cref="SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, CancellationToken)"/>,
    /// but the message the handler holds, if any, stays unacknowledged until the handler answers it or reads on, even
    /// when this is called from the handler's flow. For a push loop the handler starts (ticks, notifications): its sends
    /// must not tell the client that a message the handler is still working on was handled.
    /// </summary>
    /// <exception cref="InvalidOperationException">The session has ended or was handed to the store by a drain.</exception>
    /// <exception cref="ReplayBufferFullException">The replay buffer is full and its mode is Fail.</exception>
    public async ValueTask PushAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default) =>
        await SendCoreAsync(data, type, false, null, answersHanded: false, numbered: null, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// <see cref="PushAsync(ReadOnlyMemory{byte}, WebSocketMessageType, CancellationToken)"/> that updates
    /// <see cref="State"/> in the same step, as <see cref="SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, Action{SessionStateBag}, CancellationToken)"/>
    /// does: a push loop that keeps its position in the state neither skips nor repeats a message across a restart.
    /// </summary>
    public async ValueTask PushAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type, Action<SessionStateBag> updateState, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(updateState);
        await SendCoreAsync(data, type, false, updateState, answersHanded: false, numbered: null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends a message and completes when the client acknowledges it: true then, false when the session ends first. A
    /// client that ends the session itself states what it last received; a message up to that counts as acknowledged.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// The session has ended or was handed to the store by a drain, before the send or, for a drain, while it waited for
    /// the client's ack (if the session resumes elsewhere, the message is replayed and acknowledged there).
    /// </exception>
    /// <exception cref="ReplayBufferFullException">The replay buffer is full and its mode is Fail.</exception>
    public async Task<bool> SendAndWaitAckAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default)
    {
        var acknowledged = await SendCoreAsync(data, type, true, null, answersHanded: true, numbered: null, cancellationToken).ConfigureAwait(false);
        return acknowledged is null || await acknowledged.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// For a group send or broadcast: like <see cref="SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, CancellationToken)"/>,
    /// but the wait for room in the replay buffer also ends with <paramref name="roomDeadline"/> (the caller then ends the
    /// session). <paramref name="numbered"/>, if given, is set once the message has its sequence number (its place in the
    /// session's order), before the socket write or the store's commit; a send that fails before that leaves it unset.
    /// </summary>
    internal async ValueTask SendToMemberAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type, TaskCompletionSource? numbered, CancellationToken roomDeadline,
        CancellationToken cancellationToken) =>
        await SendCoreAsync(data, type, false, null, answersHanded: false, numbered, cancellationToken, roomDeadline).ConfigureAwait(false);

    // answersHanded: whether this send counts as the handler's answer to the message it holds (that message is then
    // delivered). A group send, a broadcast or a push (PushAsync) does not: the handler may still be working on it.
    private async ValueTask<Task<bool>?> SendCoreAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type, bool track, Action<SessionStateBag>? updateState, bool answersHanded,
        TaskCompletionSource? numbered, CancellationToken cancellationToken, CancellationToken roomDeadline = default)
    {
        if (type == WebSocketMessageType.Close)
        {
            throw new ArgumentException("Close is not a message type.", nameof(type));
        }

        if (_plain is { } plain)
        {
            if (roomDeadline.CanBeCanceled)
            {
                // A group send or broadcast (only they have a room deadline): never wait on one member's socket. A full
                // one is closed with 4008, as in the connection registry's broadcasts.
                if (!plain.TryQueueBroadcast(data, type))
                {
                    throw new InvalidOperationException($"Connection {plain.Id} is closing.");
                }
            }
            else
            {
                await plain.SendAsync(data, type, cancellationToken).ConfigureAwait(false);
            }

            updateState?.Invoke(State);
            return null;
        }

        if (Journal is { } journal)
        {
            return await SendJournaledAsync(journal, data, type, track, updateState, answersHanded, numbered, cancellationToken, roomDeadline).ConfigureAwait(false);
        }

        await EnterSendLockWithRoomAsync(data.Length, cancellationToken, roomDeadline).ConfigureAwait(false);
        var answered = false;
        try
        {
            ThrowIfUnusable();
            var isText = type == WebSocketMessageType.Text;
            var appended = await Replay.AppendAsync(data, isText, track, cancellationToken).ConfigureAwait(false);
            if (appended.Status == ReplayAppendStatus.SessionEnded)
            {
                var end = Replay.End!.Value;
                _manager.Lose(this, end.Reason, tellClient: true);
                throw new InvalidOperationException($"Session {Id} ended ({end.Reason}): the client did not acknowledge in time.");
            }

            // Only once the answer is numbered (a full buffer in Fail mode, a cancelled wait, a message too large throw
            // above): the message it answers counts as delivered with it, never without it. Under the send lock: a
            // drain's snapshot has both or neither.
            answered = answersHanded && Inbox.AcceptHandedForSend();
            updateState?.Invoke(State);
            numbered?.TrySetResult();
            if (Volatile.Read(ref _carrier) is not { } carrier)
            {
                // No socket: the message waits in the replay buffer for the resume.
            }
            else if (roomDeadline.CanBeCanceled && !carrier.IsCatchingUp)
            {
                carrier.QueueDataOrCloseSlow(this, appended.Sequence, isText, data); // a group send or broadcast (only they have a room deadline)
            }
            else
            {
                // A session's own send, or a group send to a socket catching up after a resume (bounded by its deadline).
                await carrier.SendDataAsync(this, appended.Sequence, isText, data, groupDeadline: roomDeadline).ConfigureAwait(false);
            }

            return appended.Acknowledged;
        }
        finally
        {
            _sendLock.Release();
            if (answered)
            {
                Inbox.RaiseDelivered();
            }
        }
    }

    // With a shared store: number the message under the send lock, then wait (outside it, so sends close together
    // share one commit) until the store has it; the writer puts it on the wire after the commit.
    private async ValueTask<Task<bool>?> SendJournaledAsync(SessionJournalWriter journal, ReadOnlyMemory<byte> data, WebSocketMessageType type, bool track,
        Action<SessionStateBag>? updateState, bool answersHanded, TaskCompletionSource? numbered, CancellationToken cancellationToken, CancellationToken roomDeadline)
    {
        Task stored;
        Task<bool>? acknowledged;
        await EnterSendLockWithRoomAsync(data.Length, cancellationToken, roomDeadline).ConfigureAwait(false);
        try
        {
            ThrowIfUnusable();
            var isText = type == WebSocketMessageType.Text;
            var appended = await Replay.AppendAsync(data, isText, track, cancellationToken).ConfigureAwait(false);
            if (appended.Status == ReplayAppendStatus.SessionEnded)
            {
                var end = Replay.End!.Value;
                _manager.Lose(this, end.Reason, tellClient: true);
                throw new InvalidOperationException($"Session {Id} ended ({end.Reason}): the client did not acknowledge in time.");
            }

            if (updateState is not null)
            {
                UpdateStateForSend(updateState);
            }

            stored = journal.Enqueue(appended.Sequence, isText, data, updateState is not null, answersHanded);
            numbered?.TrySetResult();
            acknowledged = appended.Acknowledged;
        }
        finally
        {
            _sendLock.Release();
        }

        try
        {
            await stored.WaitAsync(_manager.Options.StoreWriteTimeout, _manager.Time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new SessionStoreUnavailableException(
                $"Session {Id}: the session store did not confirm the send within {_manager.Options.StoreWriteTimeout.TotalSeconds} s. The message keeps its " +
                "place and is delivered when the store is back; if the store stays away for the resume window the session is lost (SessionLost).", e)
            { Operation = "session.send" };
        }

        return acknowledged;
    }

    /// <summary>
    /// Takes the send lock once the replay buffer has room for <paramref name="length"/> bytes, so the append under the
    /// lock does not wait. A full buffer is waited for with the lock released: room comes only from the client's acks,
    /// and while the socket is gone those arrive only after a resume, which needs this lock to replay.
    /// <paramref name="roomDeadline"/> also ends the wait for room (not the wait for the lock).
    /// </summary>
    private async ValueTask EnterSendLockWithRoomAsync(int length, CancellationToken cancellationToken, CancellationToken roomDeadline)
    {
        while (true)
        {
            if (!Replay.HasRoomFor(length))
            {
                // Linked only when the wait is real: most sends find room. The session's end (Ending) ends the wait too: a
                // drain hands the session to the store without ending its buffer, and no ack comes after that.
                using var any = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, roomDeadline, Ending);
                try
                {
                    await Replay.WaitForRoomAsync(length, any.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (Ending.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    ThrowIfUnusable(); // frozen by a drain, or ended (also when a group send's deadline passed at the same moment)
                    throw;
                }
            }

            if (roomDeadline.CanBeCanceled)
            {
                await EnterSendLockForGroupAsync(roomDeadline, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            if (Replay.HasRoomFor(length))
            {
                return; // room only grows while the lock is held (appends take it), so the append will not wait
            }

            _sendLock.Release();
        }
    }

    /// <summary>
    /// A group send or broadcast takes the send lock without waiting on one member's socket (except a socket catching up
    /// after a resume: its replay holds the lock while the client reads it, and the group send then waits its turn and for
    /// room up to its deadline, SendTimeout from its start, then closes that socket with 4008). A send of the session's own
    /// (its handler's) can hold the lock while it waits for room in the socket's full outbound buffer, up to SendTimeout:
    /// then the socket is closed as a slow consumer (4008), as when a group send finds the buffer full itself. That send
    /// ends at once (its message stays in the replay buffer), and so does the wait here. Looked at again every
    /// <see cref="GroupLockLookInterval"/>: the holder may start waiting for room after the first look.
    /// </summary>
    private async ValueTask EnterSendLockForGroupAsync(CancellationToken deadline, CancellationToken cancellationToken)
    {
        if (_sendLock.Wait(0, CancellationToken.None))
        {
            return;
        }

        do
        {
            if (Volatile.Read(ref _carrier) is not { } carrier)
            {
                continue;
            }

            if (carrier.IsCatchingUp)
            {
                // A resume's replay waits for room by design: the client catching up, not a stuck send. Up to the group
                // send's deadline (SendTimeout), as the session's own sends wait.
                if (deadline.IsCancellationRequested)
                {
                    carrier.Connection.CloseSlowConsumer("a group send waited its deadline for a resume's replay on a socket catching up");
                }
            }
            else if (carrier.Connection.HasSendersWaitingForRoom)
            {
                carrier.Connection.CloseSlowConsumer("a group send found a send of the session's own waiting for room in the full outbound buffer");
            }
        }
        while (!await _sendLock.WaitAsync(GroupLockLookInterval, cancellationToken).ConfigureAwait(false));
    }

    private static readonly TimeSpan GroupLockLookInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>The session's metadata for the shared store: token hash, user, groups and state (messages and cursors are in its log).</summary>
    internal SessionSnapshot MetadataSnapshot(DateTimeOffset now, TimeSpan window) => new()
    {
        Id = Id,
        TokenHash = TokenHash,
        UserId = UserId,
        CreatedAt = CreatedAt,
        ExpiresAt = now + window,
        Groups = GroupNames(),
        State = State.ToDictionary(),
    };

    private void ThrowIfUnusable()
    {
        if (IsFrozen || IsEnded)
        {
            throw new InvalidOperationException($"Session {Id} has {(IsFrozen ? "been handed to the session store by a drain" : "ended")}; it can no longer send.");
        }
    }

    /// <summary>Makes <paramref name="carrier"/> the current socket; the previous one, if any, is returned (to be closed with 4001).</summary>
    internal SessionCarrier? Attach(SessionCarrier carrier, ClaimsPrincipal? user)
    {
        Interlocked.Increment(ref _generation);
        User = user ?? User;
        return Interlocked.Exchange(ref _carrier, carrier);
    }

    /// <summary>Clears the carrier if it is still <paramref name="carrier"/>; true when it was (the session is now detached).</summary>
    internal bool Detach(SessionCarrier carrier)
    {
        if (Interlocked.CompareExchange(ref _carrier, null, carrier) != carrier)
        {
            return false;
        }

        Interlocked.Increment(ref _generation);
        return true;
    }

    /// <summary>Drain: stops sends and reads and takes a consistent snapshot. Call with the send lock held.</summary>
    internal SessionSnapshot FreezeLocked(DateTimeOffset now, TimeSpan window)
    {
        SessionSnapshot snapshot;
        lock (SyncRoot)
        {
            IsFrozen = true;
            var unacknowledged = Replay.SnapshotUnacknowledged();
            var last = Replay.LastSequence;
            snapshot = new SessionSnapshot
            {
                Id = Id,
                TokenHash = TokenHash,
                UserId = UserId,
                CreatedAt = CreatedAt,
                ExpiresAt = now + window,
                NextOutboundSequence = last + 1,
                OutboundAcknowledged = unacknowledged.Count > 0 ? unacknowledged[0].Sequence - 1 : last,
                Unacknowledged = unacknowledged,
                LastInboundDelivered = Inbound.LastDelivered,
                Groups = GroupNames(),
                State = State.ToDictionary(),
            };
        }

        // No ack reaches this process any more: a SendAndWaitAckAsync waiting for one learns why (the process that resumes
        // the session replays the message, and hears the client's ack).
        Replay.FailAcknowledgementWaits(new InvalidOperationException(
            $"Session {Id} was handed to the session store by a drain before the client acknowledged this message; if the session resumes elsewhere, the message is replayed there."));
        Inbox.Discard(); // before Ending is cancelled: that wakes a reader parked on Ending (SessionInbox.TryPark)
        CancelEnding();
        return snapshot;
    }

    /// <summary>
    /// Ends the session for good: the handler's token is cancelled, reads complete (with <paramref name="discardUnread"/>,
    /// at once, dropping what is unread), acknowledgement tasks get false. <paramref name="beforeReadsEnd"/> runs first,
    /// once the session counts as ended: the socket's loop and the handler return when reads complete, and a close they
    /// request then (1000, the handler's normal end) would otherwise come before the one the caller means to send.
    /// <paramref name="clientTold"/>: the caller sends the client SessionLost on its socket (<see cref="ClientToldLost"/>,
    /// set with the end itself, so a carrier that sees the end sees it too, and a later call cannot take it back).
    /// </summary>
    internal bool TryEnd(SessionLostReason reason, bool discardUnread = false, Action? beforeReadsEnd = null, bool clientTold = false)
    {
        if (Interlocked.CompareExchange(ref _ended, clientTold ? EndedClientTold : Ended, NotEnded) != NotEnded)
        {
            return false;
        }

        beforeReadsEnd?.Invoke();
        Replay.EndSession(reason);
        if (discardUnread)
        {
            Inbox.Discard();
        }
        else
        {
            Inbox.Complete();
        }

        CancelEnding(); // after the inbox ended: that woke a reader parked on Ending (SessionInbox.TryPark)
        return true;
    }

    // The handler's token runs the application's callbacks here, on whichever thread ends the session (a group send, an
    // expiry, a drain). One that throws must not stop that end half-way: the session would stay listed, its socket open.
    private void CancelEnding()
    {
        try
        {
            _ending.Cancel();
        }
        catch (AggregateException e)
        {
            SessionLog.EndingCallbackFailed(_manager.Logger, Id, e); // every callback ran; Cancel reports their failures after
        }
    }

    internal void ReleaseBuffers() => Replay.Dispose();

    /// <summary>True for the first call only: a session ended by a loss or a fencing is forgotten again when its handler returns.</summary>
    internal bool MarkForgotten() => Interlocked.Exchange(ref _forgotten, 1) == 0;

    /// <summary>
    /// The handler returned while the session had no socket and the client had not acknowledged everything sent: the
    /// session waits, without a handler or groups, for the resume that delivers the rest (then it ends), or for its window to pass.
    /// </summary>
    internal bool HandlerReturned => Volatile.Read(ref _handlerReturned) != 0;

    /// <summary>See <see cref="HandlerReturned"/>. Call holding the send lock, under which a resume attaches.</summary>
    internal void MarkHandlerReturned() => Volatile.Write(ref _handlerReturned, 1);
}

/// <summary>
/// What the handler reads: a bounded queue of received messages. A message counts as delivered (and may be
/// acknowledged, and with a shared store recorded as delivered) only once the handler has finished with it, which is
/// when it asks for the next one (<see cref="TryRead"/> or <see cref="WaitToReadAsync"/> again). A handler that reads
/// a message, sends its answer and reads on therefore has the answer in the replay buffer (or the store) before the
/// message is acknowledged: a drain or a crash in between makes the client resend the message rather than lose the answer.
/// </summary>
internal sealed partial class SessionInbox : ChannelReader<LifelineMessage>
{
    private readonly LifelineSession _session;
    private readonly Channel<(long Sequence, LifelineMessage Message)> _channel;
    private readonly long _maxBytes;
    private long _bytes; // payload bytes waiting for the handler (under the session's SyncRoot)
    private TaskCompletionSource? _byteRoom; // the carrier waits here while _bytes is at the bound
    private bool _completed; // no more writes: a waiting carrier goes on to find the channel closed
    private bool _readsEnded; // a lost session: nothing more for the handler, even before the unread rest is dropped
    private long _handedSequence;
    private int _handedLength;
    private bool _handedAccepted;
    private TaskCompletionSource? _hold;
    private TaskCompletionSource? _boundary;

    public SessionInbox(LifelineSession session, int capacity, long maxBytes)
    {
        _session = session;
        _maxBytes = maxBytes;
        _channel = Channel.CreateBounded<(long, LifelineMessage)>(new BoundedChannelOptions(capacity) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
    }

    /// <summary>A read made the ack loop's work change: the first unacknowledged delivery, or an ack due by count or bytes.</summary>
    public event Action? Delivered;

    public override Task Completion => _channel.Reader.Completion;

    public override bool CanCount => true;

    public override int Count => _channel.Reader.Count;

    /// <summary>
    /// Queues a message for the handler; waits while the inbox is full by count or bytes (one message always fits an
    /// empty inbox). The writer then calls <see cref="HandOver"/> once it holds no lock or turn.
    /// </summary>
    public async ValueTask WriteAsync(long sequence, LifelineMessage message, CancellationToken cancellationToken)
    {
        var length = message.Data.Length;
        while (true)
        {
            Task room;
            lock (_session.SyncRoot)
            {
                if (_bytes == 0 || _bytes + length <= _maxBytes || _completed)
                {
                    _bytes += length;
                    break;
                }

                _byteRoom ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                room = _byteRoom.Task;
            }

            await room.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await _channel.Writer.WriteAsync((sequence, message), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            TakeBytes(length);
            throw;
        }
    }

    public void Complete()
    {
        _channel.Writer.TryComplete();
        WakeParkedReader(inline: false);
        ReleaseByteRoom();
        ReleaseHold();
    }

    /// <summary>Drops every unread message (a drain: they are not acknowledged, so the client resends them) and completes.</summary>
    public void Discard()
    {
        _channel.Writer.TryComplete();
        while (_channel.Reader.TryRead(out var entry))
        {
            TakeBytes(entry.Message.Data.Length);
        }

        WakeParkedReader(inline: false);
        ReleaseByteRoom();
        ReleaseHold();
    }

    /// <summary>
    /// Drain: hands out nothing more and waits, up to <paramref name="bound"/>, for the handler to finish the message
    /// it holds (to ask for the next one), so the snapshot taken next has its answer and counts the message delivered.
    /// False when the bound passed first: that message is then not counted, and the client resends it.
    /// </summary>
    public async Task<bool> HoldAtBoundaryAsync(TimeSpan bound, TimeProvider time, CancellationToken cancellationToken)
    {
        Task boundary;
        lock (_session.SyncRoot)
        {
            _hold ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_handedSequence == 0)
            {
                return true;
            }

            _boundary ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            boundary = _boundary.Task;
        }

        try
        {
            await boundary.WaitAsync(bound, time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public override bool TryRead([MaybeNullWhen(false)] out LifelineMessage item)
    {
        FinishHanded();
        item = null;
        lock (_session.SyncRoot)
        {
            if (_session.IsFrozen || _hold is not null || _readsEnded || !_channel.Reader.TryRead(out var entry))
            {
                return false;
            }

            (_handedSequence, _handedLength, _handedAccepted) = (entry.Sequence, entry.Message.Data.Length, false);
            item = entry.Message;
            TakeBytesLocked(entry.Message.Data.Length);
        }

        return true;
    }

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        FinishHanded();
        var hold = Volatile.Read(ref _hold);
        if (hold is not null)
        {
            return WaitPastHoldAsync(hold.Task, cancellationToken);
        }

        return TryPark(cancellationToken, out var parked) ? parked : _channel.Reader.WaitToReadAsync(cancellationToken);
    }

    // While a drain holds the inbox, a reader waits here (not spinning on data it may not take) until the inbox ends.
    private async ValueTask<bool> WaitPastHoldAsync(Task hold, CancellationToken cancellationToken)
    {
        await hold.WaitAsync(cancellationToken).ConfigureAwait(false);
        return await _channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The handler sends while it holds a message (from its own flow, <see cref="SessionHandlerFlow"/>; a push from
    /// elsewhere answers nothing): that message counts as delivered from this send on, so the cursor
    /// the send is stored with (replay buffer, drain snapshot or store commit) includes it. Answer and "delivered" are
    /// kept together: after a drain or a crash the client neither loses the answer nor gets it twice. Call under the
    /// session's send lock, with the message's append (before or after it: a snapshot takes the same lock) and before its
    /// frame takes the ack; then <see cref="RaiseDelivered"/> outside any lock when true.
    /// </summary>
    public bool AcceptHandedForSend()
    {
        if (Volatile.Read(ref _handedSequence) == 0)
        {
            return false; // nothing handed out (a handler that only sends): no lock on this per-send path
        }

        if (!SessionHandlerFlow.IsHandlerOf(_session))
        {
            return false; // a push from outside the handler: the message it holds is not answered yet
        }

        lock (_session.SyncRoot)
        {
            if (_handedSequence == 0 || _handedAccepted || _session.IsFrozen)
            {
                return false;
            }

            _session.Inbound.Accept(_handedSequence, _handedLength, out AckTrigger trigger);
            _handedAccepted = true;
            return trigger != AckTrigger.None; // only when the ack loop has something new to do: not once per message
        }
    }

    public void RaiseDelivered() => Delivered?.Invoke();

    /// <summary>
    /// The session is being lost: the handler gets nothing more, and the message it holds counts as delivered (the
    /// SessionLost report includes it). The unread rest is dropped next (<see cref="Discard"/>).
    /// </summary>
    public void EndReads()
    {
        lock (_session.SyncRoot)
        {
            _readsEnded = true;
            if (_handedSequence != 0 && !_handedAccepted && !_session.IsFrozen)
            {
                _session.Inbound.Accept(_handedSequence, _handedLength, out AckTrigger _);
                _handedAccepted = true;
            }
        }
    }

    /// <summary>The handler came back for more: the message it was handed is done, so it counts as delivered now.</summary>
    private void FinishHanded()
    {
        if (Volatile.Read(ref _handedSequence) == 0)
        {
            return; // nothing handed out since the last call (only a reader sets it): no lock on the reader's every wait
        }

        TaskCompletionSource? boundary;
        bool accepted;
        lock (_session.SyncRoot)
        {
            if (_handedSequence == 0)
            {
                return;
            }

            accepted = false;
            if (!_handedAccepted && !_session.IsFrozen)
            {
                _session.Inbound.Accept(_handedSequence, _handedLength, out AckTrigger trigger);
                accepted = trigger != AckTrigger.None; // wake the ack loop only when it has something new to do
            }

            _handedSequence = 0;
            boundary = _boundary;
            _boundary = null;
        }

        boundary?.TrySetResult();
        if (accepted)
        {
            Delivered?.Invoke();
        }
    }

    private void TakeBytes(int length)
    {
        lock (_session.SyncRoot)
        {
            TakeBytesLocked(length);
        }
    }

    // A message left the inbox: the carrier may have room for the next one now.
    private void TakeBytesLocked(int length)
    {
        _bytes -= length;
        var room = _byteRoom;
        _byteRoom = null;
        room?.TrySetResult(); // runs its continuation elsewhere: safe under the lock
    }

    private void ReleaseByteRoom()
    {
        TaskCompletionSource? room;
        lock (_session.SyncRoot)
        {
            _completed = true;
            room = _byteRoom;
            _byteRoom = null;
        }

        room?.TrySetResult();
    }

    private void ReleaseHold()
    {
        TaskCompletionSource? hold;
        lock (_session.SyncRoot)
        {
            hold = _hold;
        }

        hold?.TrySetResult();
    }
}
