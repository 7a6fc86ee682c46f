using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text;
using Lifeline.CloseCodes;
using Lifeline.Protocol;
using Lifeline.Session;
using Lifeline.Session.Store;
using Lifeline.Session.Wire;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Lifeline.AspNetCore;

internal enum OpenKind
{
    Opened,
    Refused,
    Lost,
    BeyondSent,
    Unavailable,

    /// <summary>A new session, refused because <see cref="LifelineSessionOptions.MaxSessions"/> are held: 1013.</summary>
    Full,

    /// <summary>The socket's close (a drain's 1012, say) was requested before its Hello was answered: no session.</summary>
    Closing,
}

internal readonly record struct OpenOutcome(OpenKind Kind, LifelineSession? Session = null, string? Detail = null);

/// <summary>
/// The sessions of this process: starts, resumes, expires and saves them, and sends to groups of sessions. One per
/// application, registered by <c>AddLifelineSessions</c>.
/// </summary>
/// <remarks>
/// Thread-safe. Group sends and broadcasts go into each member's replay buffer (so they are replayed on resume); they
/// run for all members at once, so one slow member does not hold up the others.
/// </remarks>
public sealed class LifelineSessionManager : IDisposable
{
    // Multi-node counters (Redis fencing and store errors) live on one process-wide meter; the per-application
    // session counters below come from the host's IMeterFactory.
    private static readonly Meter NodeMeter = new(Lifeline.Diagnostics.LifelineMetrics.MeterName);
    private static readonly Counter<long> FencedCounter = NodeMeter.CreateCounter<long>("lifeline.server.sessions_fenced", "{session}", "Sessions this node stopped serving because another node took them over.");
    internal static readonly Counter<long> StoreErrors = NodeMeter.CreateCounter<long>("lifeline.server.session_store_errors", "{error}", "Failed writes of sessions to the shared store (Redis), retried; tagged with the kind.");

    // A session's replay buffer keeps at most this many spare bytes of arrays once everything was acknowledged: a server
    // holds many sessions, most of them idle.
    private const long IdleReplayFreeBytes = 64 * 1024;

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _started;
    private readonly Counter<long> _resumed;
    private readonly Counter<long> _lost;
    private readonly Counter<long> _replayed;
    private readonly Counter<long> _refusedFull;
    private readonly Counter<long> _notFound;
    private int _newReserved; // new sessions between their Hello and their listing (or giving up): see TryReserveNew
    private readonly ConcurrentDictionary<SessionId, LifelineSession> _sessions = new();
    private readonly GroupTable<SessionId, LifelineSession> _groups = new();
    private readonly LifelineServer _server;
    private readonly LifelineServerOptions _serverOptions;
    private readonly ISessionJournal? _journal;
    private readonly ISessionGroupFanout? _fanout;
    private readonly CancellationTokenSource _stopping = new();

    // Resumes of one session on this node go through the shared store one at a time: two at once (a client that
    // reconnected twice in quick succession) each restored it and started a handler of its own. Striped by session id,
    // so there is no per-session object to clean up; a resume is rare next to the messages it carries.
    private readonly SemaphoreSlim[] _resumeTurns = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    // Sessions that ended here and are being removed from the shared store: a resume of one waits for that first, so it
    // does not read the store a moment before the removal and bring the session back.
    private readonly ConcurrentDictionary<SessionId, Task> _endingInStore = new();
    private IAsyncDisposable? _subscription;
    private int _saved;

    /// <summary>Creates the manager; normally resolved from DI.</summary>
    public LifelineSessionManager(IOptions<LifelineSessionOptions> options, IOptions<LifelineServerOptions> serverOptions, ISessionStore store, LifelineServer server,
        ILogger<LifelineSessionManager>? logger = null, TimeProvider? timeProvider = null, IHostEnvironment? environment = null,
        IMeterFactory? meterFactory = null, ISessionJournal? journal = null, ISessionGroupFanout? fanout = null)
    {
        _journal = journal;
        _fanout = fanout;
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(serverOptions);
        Options = options.Value;
        _serverOptions = serverOptions.Value;
        Store = store;
        _server = server;
        Logger = logger ?? (ILogger)NullLogger.Instance;
        Time = timeProvider ?? TimeProvider.System;
        DrainFilePath = Options.DrainFilePath ?? Path.Combine(Path.GetTempPath(), $"lifeline-sessions-{Sanitize(environment?.ApplicationName ?? "app")}.bin");

        // From the host's IMeterFactory when there is one, so a listener can tell this application's measurements
        // (Meter.Scope is the factory) from another's in the same process.
        _meter = meterFactory?.Create(Lifeline.Diagnostics.LifelineMetrics.MeterName) ?? new Meter(Lifeline.Diagnostics.LifelineMetrics.MeterName);
        _ownsMeter = meterFactory is null;
        _started = _meter.CreateCounter<long>("lifeline.server.sessions_started", "{session}", "Sessions started (Welcome sent).");
        _resumed = _meter.CreateCounter<long>("lifeline.server.sessions_resumed", "{session}", "Sessions resumed, tagged restored=true when loaded from the store.");
        _lost = _meter.CreateCounter<long>("lifeline.server.sessions_lost", "{session}", "Sessions lost, tagged with the reason.");
        _replayed = _meter.CreateCounter<long>("lifeline.server.messages_replayed", "{message}", "Messages resent to clients after a resume.");
        _refusedFull = _meter.CreateCounter<long>("lifeline.server.sessions_refused", "{session}", "New sessions refused with 1013 because MaxSessions were held.");
        _notFound = _meter.CreateCounter<long>("lifeline.server.sessions_not_found", "{hello}",
            "Resume Hellos naming a session this node does not hold (expired, ended, or never here), answered with SessionLost.");
        _meter.CreateObservableUpDownCounter("lifeline.server.sessions", () => _sessions.Count,
            "{session}", "Sessions this node holds now: connected, or waiting for their client to resume.");
        _meter.CreateObservableGauge("lifeline.server.session_replay_bytes",
            () => _sessions.Values.Sum(s => s.IsResumable && !s.IsEnded ? s.Unacknowledged.Bytes : 0),
            "By", "Payload bytes held in session replay buffers (unacknowledged).");
    }

    /// <summary>The options.</summary>
    public LifelineSessionOptions Options { get; }

    /// <summary>Where sessions wait to be resumed by another process.</summary>
    public ISessionStore Store { get; }

    /// <summary>The shared store every resumable session is written to (Redis), or null (sessions live in this process).</summary>
    public ISessionJournal? Journal => _journal;

    /// <summary>The drain file of the default in-memory store.</summary>
    public string DrainFilePath { get; }

    /// <summary>How many sessions this process runs (connected or within their window).</summary>
    public int Count => _sessions.Count;

    /// <summary>The sessions this process runs.</summary>
    public IReadOnlyCollection<LifelineSession> Sessions => [.. _sessions.Values];

    internal ILogger Logger { get; }

    internal TimeProvider Time { get; }

    /// <summary>Finds a running session.</summary>
    public LifelineSession? Find(SessionId id) => _sessions.GetValueOrDefault(id);

    /// <summary>
    /// Sends to every session of a group (each copy numbered and replayed by its session); returns how many of this
    /// node's sessions it reached (with a shared store, a copy numbered but not yet confirmed by it counts: it goes out
    /// once the store confirms it, or the session ends with SessionLost). With a group fan-out (Redis) it is also published to the other nodes, which hand it
    /// to their members; a publish that fails throws <see cref="SessionStoreUnavailableException"/> after the local sends.
    /// </summary>
    /// <remarks>
    /// No member holds up the others: each gets its copy at once. One whose socket's outbound buffer is full gets its
    /// socket closed with 4008 (slow consumer) and keeps its session: the copy waits in its replay buffer for the resume.
    /// One whose socket is still catching up after a resume (its replay fills that buffer by design) is given up to
    /// <see cref="LifelineServerOptions.SendTimeout"/> for room before that close; this call then returns only when it has.
    /// One whose replay buffer stays full for SendTimeout (its client does not acknowledge) loses its session.
    /// </remarks>
    public async Task<int> SendToGroupAsync(string group, ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(group);
        var reached = await SendToManyAsync(_groups.Members(group), data, type, cancellationToken).ConfigureAwait(false);
        if (_fanout is not null)
        {
            await _fanout.PublishAsync(group, data, type == WebSocketMessageType.Text, cancellationToken).ConfigureAwait(false);
        }

        return reached;
    }

    /// <summary>Sends a text message to every session of a group.</summary>
    public Task<int> SendToGroupAsync(string group, string text, CancellationToken cancellationToken = default) =>
        SendToGroupAsync(group, Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);

    /// <summary>Sends to every session of this process and, with a group fan-out (Redis), of every other node; returns how many local sessions it reached.</summary>
    public async Task<int> SendToAllAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default)
    {
        var reached = await SendToManyAsync([.. _sessions.Values], data, type, cancellationToken).ConfigureAwait(false);
        if (_fanout is not null)
        {
            await _fanout.PublishAsync(null, data, type == WebSocketMessageType.Text, cancellationToken).ConfigureAwait(false);
        }

        return reached;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }

        _stopping.Cancel();
    }

    /// <summary>Start: subscribes to the group fan-out (retrying while the store is away) and renews the quiet sessions' keys.</summary>
    internal void StartBackground()
    {
        if (_fanout is not null)
        {
            _ = SubscribeLoopAsync(_stopping.Token);
        }

        if (_journal is not null)
        {
            _ = RenewLoopAsync(_stopping.Token);
        }
    }

    /// <summary>Stop: ends the fan-out subscription.</summary>
    internal async Task StopBackgroundAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _subscription, null) is { } subscription)
        {
            try
            {
                await subscription.DisposeAsync().ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Stopping goes on whatever the store says.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    /// <summary>Another node owns the session now: stop at once, deliver and acknowledge nothing more, close its socket with 4001.</summary>
    internal void Fenced(LifelineSession session, string why)
    {
        // The 4001 is requested before the reads end (the first close requested is the one sent): once they end, the
        // socket's loop and the handler return, and their normal end closes with 1000, which tells the client to stop
        // for good instead of resuming on the node that has the session now.
        if (!session.TryEnd(SessionLostReason.NotFound, discardUnread: true, beforeReadsEnd: () =>
            {
                if (session.Carrier is { } carrier)
                {
                    _ = carrier.Connection.CloseAsync(SessionProtocol.SessionTakenOver, "session resumed elsewhere", CancellationToken.None);
                }
            }))
        {
            session.Inbox.Discard();
            return;
        }

        FencedCounter.Add(1);
        SessionLog.Fenced(Logger, session.Id, why);
        Forget(session);
    }

    private async Task SubscribeLoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var subscription = await _fanout!.SubscribeAsync(DeliverFromFanoutAsync, stopping).ConfigureAwait(false);
                if (Interlocked.CompareExchange(ref _subscription, subscription, null) is not null || stopping.IsCancellationRequested)
                {
                    await subscription.DisposeAsync().ConfigureAwait(false);
                }

                SessionLog.FanoutSubscribed(Logger);
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
#pragma warning disable CA1031 // Keep trying until the store is back.
            catch (Exception e)
#pragma warning restore CA1031
            {
                SessionLog.FanoutSubscribeFailed(Logger, e.Message);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), Time, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>
    /// A group message or broadcast from another node, for this node's members. It is not awaited member by member: the
    /// subscription hands over one message at a time, so a member that waits for room (it does not acknowledge) would
    /// hold every later message for every member of this node for up to SendTimeout. Each member's send runs on its own.
    /// A member's next fan-out message starts once the previous one has its place in the member's order (numbered; see
    /// <see cref="LifelineSession.FanoutPlaced"/>), which is at once unless it waits for room: then the next ones wait
    /// behind it, in order. A wait for room ends within SendTimeout (the member is then lost, and those behind it end at
    /// once); a member with as many fan-out messages (or bytes) waiting as its replay buffer holds is lost at once.
    /// </summary>
    private ValueTask DeliverFromFanoutAsync(string? group, ReadOnlyMemory<byte> payload, bool isText, CancellationToken cancellationToken)
    {
        LifelineSession[] members = group is null
            ? [.. _sessions.Values]
            : _groups.Members(group);
        if (members.Length == 0)
        {
            return ValueTask.CompletedTask;
        }

        var data = payload.ToArray(); // the sends outlive this call
        var type = isText ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
        var deadline = new CancellationTokenSource(_serverOptions.SendTimeout, Time); // for the members sent to now
        List<Task>? pending = null;
        foreach (var member in members)
        {
            var placed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (member.FanoutPlaced is { IsCompleted: false } previous)
            {
                var waiting = Interlocked.Increment(ref member.FanoutWaiting);
                var waitingBytes = Interlocked.Add(ref member.FanoutWaitingBytes, data.Length);
                if (waiting >= Options.Replay.MaxMessages || waitingBytes > Options.Replay.MaxBytes)
                {
                    Interlocked.Decrement(ref member.FanoutWaiting);
                    Interlocked.Add(ref member.FanoutWaitingBytes, -data.Length);
                    SessionLog.FanoutBacklog(Logger, member.Id, waiting, waitingBytes);
                    Lose(member, SessionLostReason.BufferFull, tellClient: true);
                    continue;
                }

                _ = SendBehindAsync(previous, member, group, data, type, placed, cancellationToken);
            }
            else
            {
                var sent = SendFanoutToMemberAsync(member, data, type, placed, deadline.Token, cancellationToken);
                if (!sent.IsCompleted)
                {
                    (pending ??= []).Add(sent);
                }
            }

            member.FanoutPlaced = placed.Task.IsCompleted ? null : placed.Task;
        }

        if (pending is null)
        {
            deadline.Dispose();
        }
        else
        {
            _ = DisposeWhenDoneAsync(deadline, pending);
        }

        return ValueTask.CompletedTask;

        static async Task DisposeWhenDoneAsync(CancellationTokenSource deadline, List<Task> sends)
        {
            try
            {
                await Task.WhenAll(sends).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // they do not fault; this only waits
            }
            finally
            {
                deadline.Dispose();
            }
        }
    }

    /// <summary>
    /// A member's fan-out message that waited for the previous one to be placed: its own SendTimeout starts now. A group
    /// message is dropped if the member left the group meanwhile, as a local group send after the leave would not reach it.
    /// </summary>
    private async Task SendBehindAsync(Task previous, LifelineSession member, string? group, byte[] data, WebSocketMessageType type, TaskCompletionSource placed,
        CancellationToken cancellationToken)
    {
        try
        {
            await previous.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Interlocked.Decrement(ref member.FanoutWaiting);
            Interlocked.Add(ref member.FanoutWaitingBytes, -data.Length);
            if (group is not null && !member.IsInGroup(group))
            {
                return;
            }

            using var deadline = new CancellationTokenSource(_serverOptions.SendTimeout, Time);
            await SendFanoutToMemberAsync(member, data, type, placed, deadline.Token, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            placed.TrySetResult(); // set already, unless something above threw: the member's next messages must not wait for good
        }
    }

    /// <summary>
    /// One member's copy of a fan-out message. Sets <paramref name="placed"/> once numbered, or at the end whatever the
    /// outcome. Never faults: nobody awaits it to see a failure, and the member's later ones wait for it.
    /// </summary>
    private async Task SendFanoutToMemberAsync(LifelineSession member, byte[] data, WebSocketMessageType type, TaskCompletionSource placed, CancellationToken deadline,
        CancellationToken cancellationToken)
    {
        try
        {
            await SendToMemberAsync(member, data, type, placed, deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The node stops.
        }
        catch (SessionStoreUnavailableException)
        {
            // Numbered and kept in the session's log: delivered when the store is back, or the session is lost (logged by the store).
        }
#pragma warning disable CA1031 // Anything else (a message larger than this node's replay buffer): the member must not miss it unseen.
        catch (Exception e)
#pragma warning restore CA1031
        {
            SessionLog.FanoutSendFailed(Logger, member.Id, e);
            Lose(member, SessionLostReason.BufferFull, tellClient: true);
        }
        finally
        {
            placed.TrySetResult(); // a plain-mode member's message is placed once queued, which is when its send returns
        }
    }

    private async Task RenewLoopAsync(CancellationToken stopping)
    {
        var period = TimeSpan.FromMilliseconds(Math.Max(1000, Options.ResumeWindow.TotalMilliseconds / 3));
        try
        {
            while (true)
            {
                await Task.Delay(period, Time, stopping).ConfigureAwait(false);
                foreach (var session in _sessions.Values)
                {
                    if (!session.IsEnded && !session.IsFrozen && session.Carrier is not null)
                    {
                        session.Journal?.RequestRenew();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    internal void AddToGroup(string group, LifelineSession session) => _groups.Add(group, session.Id, session);

    internal void RemoveFromGroup(string group, LifelineSession session) => _groups.Remove(group, session.Id, session);

    /// <summary>Tests: whether the group fan-out's subscription is confirmed (messages published from now on arrive).</summary>
    internal bool IsFanoutSubscribed => Volatile.Read(ref _subscription) is not null;

    /// <summary>Tests: how many groups have members.</summary>
    internal int GroupCount => _groups.Count;

    /// <summary>The per-socket handler of a session endpoint.</summary>
    internal async Task RunSocketAsync(LifelineConnection connection, Func<LifelineSession, CancellationToken, Task> handler)
    {
        if (connection.SubProtocol != SessionProtocol.SubProtocol)
        {
            await RunPlainAsync(connection, handler).ConfigureAwait(false);
            return;
        }

        await new SessionCarrier(connection, this, handler).RunAsync().ConfigureAwait(false);
    }

    /// <summary>Answers a Hello: a new session, a resume, or SessionLost.</summary>
    internal async Task<OpenOutcome> OpenAsync(SessionCarrier carrier, HelloFrame hello, Func<LifelineSession, CancellationToken, Task> handler)
    {
        var connection = carrier.Connection;
        var userId = UserIdOf(connection.User);
        if (!hello.IsResume)
        {
            // A Hello read after the socket's close was requested (it was on its way when a drain asked for 1012): its
            // Welcome could not be sent, and a session started now would have a handler and be saved by the drain,
            // though no client holds its token.
            if (connection.IsCloseRequested)
            {
                return new OpenOutcome(OpenKind.Closing);
            }

            if (!TryReserveNew())
            {
                return new OpenOutcome(OpenKind.Full);
            }

            try
            {
                return await OpenNewAsync(carrier, userId, handler).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _newReserved);
            }
        }

        // 5.6 step 1: the token must belong to the id; needs no lookup, so it reveals nothing.
        if (!hello.ResumeToken.BelongsTo(hello.SessionId))
        {
            return new OpenOutcome(OpenKind.Refused, Detail: "token does not belong to the id");
        }

        var restored = false;
        LifelineSession? existing;
        if (_journal is not null)
        {
            var opened = await OpenJournaledAsync(carrier, hello, userId).ConfigureAwait(false);
            if (opened.Outcome is { } early)
            {
                return early;
            }

            (existing, restored) = (opened.Session!, opened.Restored);
        }
        else if (!_sessions.TryGetValue(hello.SessionId, out existing) || existing.IsEnded || existing.IsFrozen)
        {
            var snapshot = await Store.TryLoadAsync(hello.SessionId).ConfigureAwait(false);
            if (snapshot is null)
            {
                return await LostOnHelloAsync(carrier, hello.SessionId).ConfigureAwait(false);
            }

            if (!snapshot.AcceptsResume(hello.ResumeToken, userId))
            {
                return new OpenOutcome(OpenKind.Refused, Detail: "token or user does not match");
            }

            snapshot = await Store.TryTakeAsync(hello.SessionId).ConfigureAwait(false);
            if (snapshot is null)
            {
                return await LostOnHelloAsync(carrier, hello.SessionId).ConfigureAwait(false);
            }

            existing = Restore(snapshot, connection.User);
            _sessions[existing.Id] = existing;
            foreach (var group in existing.Groups)
            {
                AddToGroup(group, existing);
            }

            restored = true;
        }
        else if (!(existing.TokenHash.Matches(hello.ResumeToken) & (existing.UserId is null || existing.UserId == userId)))
        {
            return new OpenOutcome(OpenKind.Refused, Detail: "token or user does not match");
        }

        var session = existing;
        if (hello.LastReceived > session.Replay.LastSequence)
        {
            if (restored)
            {
                Forget(session);
            }

            return new OpenOutcome(OpenKind.BeyondSent, Detail: $"resume states last received {hello.LastReceived} but only {session.Replay.LastSequence} were sent");
        }

        SessionCarrier? previous;
        long replayed;
        await session.SendLock.WaitAsync().ConfigureAwait(false);
        var wire = session.Journal?.WireLock;
        if (wire is not null)
        {
            await wire.WaitAsync().ConfigureAwait(false);
        }

        try
        {
            session.Replay.Acknowledge(hello.LastReceived);
            session.Journal?.ClientAcknowledged(hello.LastReceived);
            if (session.Replay.BeginReplay(hello.LastReceived, out var lease) != ReplayStatus.Ready)
            {
                var lost = SequenceRange.FromBounds(hello.LastReceived + 1, session.Replay.LastSequence);
                await carrier.SendControlAsync(w => SessionFrameWriter.WriteSessionLost(w,
                    new SessionLostFrame(SessionLostReason.ReplayUnavailable, session.Journal?.DurableInbound ?? session.Inbound.LastDelivered, lost))).ConfigureAwait(false);
                Lose(session, SessionLostReason.ReplayUnavailable, tellClient: false);
                return new OpenOutcome(OpenKind.Lost);
            }

            using (lease)
            {
                if (BeforeResumeAttachForTest is { } hook)
                {
                    await hook().ConfigureAwait(false);
                }

                carrier.BeginCatchUp(); // before the attach: a group send that finds this socket must not call the replay stuck
                previous = session.Attach(carrier, connection.User);
                if (session.IsEnded)
                {
                    // It ended meanwhile (its handler returned, its window expired): that end looked for the session's
                    // socket before this one was attached and closed nothing here. Answer as a resume after the end is
                    // answered, or this socket would stay open on a session that is over.
                    session.Detach(carrier);
                    SessionLog.NotFound(Logger, carrier.Connection.Id, session.Id);
                    _notFound.Add(1);
                    await carrier.SendControlAsync(w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(SessionLostReason.NotFound, 0, SequenceRange.Empty))).ConfigureAwait(false);
                    return new OpenOutcome(OpenKind.Lost);
                }

                if (AfterResumeAttachForTest is { } attached)
                {
                    await attached().ConfigureAwait(false);
                }

                // With a shared store only what it holds goes out (the writer sends the rest after its commit), and the
                // client is told only the delivery the store recorded.
                var durable = session.Journal?.DurableSequence ?? long.MaxValue;
                var frames = lease!.Frames.Where(f => f.Sequence <= durable).ToList();
                var lastReceived = session.Journal?.DurableInbound ?? session.Inbound.LastDelivered;
                await carrier.SendControlAsync(w => SessionFrameWriter.WriteResumed(w, new ResumedFrame(lastReceived, frames.Count))).ConfigureAwait(false);
                foreach (var frame in frames)
                {
                    await carrier.SendDataAsync(session, frame.Sequence, frame.IsText, frame.Payload, session.Journal is null ? null : lastReceived).ConfigureAwait(false);
                }

                replayed = frames.Count;
            }
        }
        finally
        {
            carrier.EndCatchUp(); // also when the replay failed or the session had ended: this socket may start another
            wire?.Release();
            session.SendLock.Release();
        }

        if (previous is not null && previous != carrier)
        {
            SessionLog.TakenOver(Logger, session.Id);
            _ = previous.Connection.CloseAsync(SessionProtocol.SessionTakenOver, "session resumed elsewhere", CancellationToken.None);
        }

        _resumed.Add(1, new KeyValuePair<string, object?>("restored", restored));
        _replayed.Add(replayed);
        SessionLog.Resumed(Logger, session.Id, connection.Id, replayed, restored ? " (restored from the store)" : string.Empty);
        if (session.HandlerReturned)
        {
            await EndAfterHandlerAsync(session).ConfigureAwait(false); // its handler returned while the link was down: what it sent is on its way now
        }

        if (restored)
        {
            session.Journal?.Start();
            StartHandler(session, handler);
        }

        return new OpenOutcome(OpenKind.Opened, session);
    }

    /// <summary>Tests: runs for a new session once it is made, before it is published and welcomed.</summary>
    internal Func<Task>? BeforeNewSessionWelcomeForTest { get; set; }

    /// <summary>Starts a new session for a Hello without a resume token: Welcome, then its handler.</summary>
    private async Task<OpenOutcome> OpenNewAsync(SessionCarrier carrier, string? userId, Func<LifelineSession, CancellationToken, Task> handler)
    {
        var connection = carrier.Connection;
        var token = ResumeToken.Create();
        var created = new LifelineSession(this, token.DeriveSessionId(), token.ComputeHash(), userId, connection.User, false,
            new ReplayBuffer(Options.Replay, Time) { IdleFreeBytes = IdleReplayFreeBytes }, new InboundSequencer(Options.Ack, Time),
            new SessionStateBag(Options.StateMaxEntries, Options.StateMaxBytes), [], Time.GetUtcNow(), Options.InboxCapacity, Options.InboxMaxBytes);
        if (_journal is not null)
        {
            try
            {
                var lease = await _journal.AcquireAsync(created.Id, Options.ResumeWindow).ConfigureAwait(false);
                await _journal.CommitAsync(lease, new SessionJournalCommit
                {
                    Snapshot = created.MetadataSnapshot(Time.GetUtcNow(), Options.ResumeWindow),
                    OutboundAcknowledged = 0,
                    InboundDelivered = 0,
                    KeepFor = Options.ResumeWindow,
                }).ConfigureAwait(false);
                created.Journal = new SessionJournalWriter(created, this, _journal, lease, 0, 0, 0);
                created.Journal.Start();
            }
            catch (Exception e) when (e is SessionStoreUnavailableException or SessionStoreFullException)
            {
                created.ReleaseBuffers();
                return new OpenOutcome(OpenKind.Unavailable, Detail: e.Message);
            }
        }

        if (BeforeNewSessionWelcomeForTest is { } beforeWelcome)
        {
            await beforeWelcome().ConfigureAwait(false);
        }

        bool welcomed;
        await created.SendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            // Published only under the send lock, with its socket attached: a broadcast that finds it waits for the
            // Welcome and numbers its message 1 after it. Published earlier, a broadcast could number a message 1
            // with no socket to carry it, and the client's first Data was 2: a gap (1002).
            _sessions[created.Id] = created;
            created.Attach(carrier, connection.User);
            welcomed = await carrier.SendControlAsync(w => SessionFrameWriter.WriteWelcome(w, new WelcomeFrame(SessionProtocol.Version, created.Id, token,
                Options.ResumeWindow, _serverOptions.MaxMessageSize, Options.Replay.MaxMessages, Options.Replay.MaxBytes))).ConfigureAwait(false);
        }
        finally
        {
            created.SendLock.Release();
        }

        if (!welcomed)
        {
            // The close came between OpenAsync's check of it and the Welcome: a session that never started, neither
            // counted nor logged as lost.
            Lose(created, SessionLostReason.NotFound, tellClient: false, countAsLost: false);
            return new OpenOutcome(OpenKind.Closing);
        }

        _started.Add(1);
        SessionLog.Started(Logger, created.Id, connection.Id);
        StartHandler(created, handler);
        return new OpenOutcome(OpenKind.Opened, created);
    }

    /// <summary>Tests: runs in a resume between the replay's start and the socket's attachment, under the session's send lock.</summary>
    internal Func<Task>? BeforeResumeAttachForTest { get; set; }

    /// <summary>Tests: runs when a detached session's window has passed and it is about to be lost, before the send lock.</summary>
    internal Func<Task>? ExpiryCheckedForTest { get; set; }

    /// <summary>The retry hint of the 1013 a Hello gets while the session store is unavailable.</summary>
    internal TimeSpan TryAgainLaterHint => _server.TryAgainLaterHint;

    /// <summary>Tests: whether an expiry that passed its first check lost the session (false: a resume came first).</summary>
    internal Action<bool>? ExpiryDecidedForTest { get; set; }

    /// <summary>Tests: runs in a resume once the new socket is attached, before the replay and the old socket's 4001.</summary>
    internal Func<Task>? AfterResumeAttachForTest { get; set; }

    /// <summary>
    /// A resume with a shared store: check the token against the store, take the session over (fencing the node that
    /// had it), and continue this node's copy only when nobody else served it in between; else rebuild it from the store.
    /// </summary>
    private async Task<(OpenOutcome? Outcome, LifelineSession? Session, bool Restored)> OpenJournaledAsync(SessionCarrier carrier, HelloFrame hello, string? userId)
    {
        var turn = _resumeTurns[(hello.SessionId.GetHashCode() & int.MaxValue) % _resumeTurns.Length];
        try
        {
            await turn.WaitAsync(carrier.Connection.Closing).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return (GoneWhileWaiting(), null, false);
        }

        try
        {
            // A resume whose client left while it waited must not take the session over: that would fence out the
            // node the client may have resumed on since, closing a live link.
            return carrier.Connection.Closing.IsCancellationRequested
                ? (GoneWhileWaiting(), null, false)
                : await OpenJournaledInTurnAsync(carrier, hello, userId).ConfigureAwait(false);
        }
        finally
        {
            turn.Release();
        }

        static OpenOutcome GoneWhileWaiting() => new(OpenKind.Unavailable, Detail: "the connection closed while the resume waited for its turn");
    }

    private async Task<(OpenOutcome? Outcome, LifelineSession? Session, bool Restored)> OpenJournaledInTurnAsync(SessionCarrier carrier, HelloFrame hello, string? userId)
    {
        var journal = _journal!;
        if (_endingInStore.TryGetValue(hello.SessionId, out var ending))
        {
            await ending.WaitAsync(Options.StoreWriteTimeout, Time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // best effort either way
        }

        try
        {
            var stored = await journal.ReadAsync(hello.SessionId).ConfigureAwait(false);
            if (stored is null)
            {
                return (await LostOnHelloAsync(carrier, hello.SessionId).ConfigureAwait(false), null, false);
            }

            if (!stored.AcceptsResume(hello.ResumeToken, userId))
            {
                return (new OpenOutcome(OpenKind.Refused, Detail: "token or user does not match"), null, false);
            }

            SessionJournalLease lease;
            if (_sessions.TryGetValue(hello.SessionId, out var local) && !local.IsEnded && !local.IsFrozen && local.Journal is { } writer)
            {
                // The running copy's writer may commit with its old lease between the acquire and the renewal below:
                // the store refuses that commit, and the writer waits for this takeover instead of fencing the session.
                using (writer.BeginTakeover())
                {
                    lease = await journal.AcquireAsync(hello.SessionId, Options.ResumeWindow).ConfigureAwait(false);
                    if (writer.Lease.Epoch == lease.Epoch - 1)
                    {
                        // Renewed before the check: an end after it removes the session from the store with this lease.
                        writer.Renew(lease);
                        if (!local.IsEnded)
                        {
                            return (null, local, false);
                        }

                        // It ended here meanwhile (its handler returned, or it was lost): its removal from the store may
                        // have carried the old lease, which the store refuses. Remove it with the new one, and answer as a
                        // resume after the end is answered, not with a second handler. Best effort, as every end's removal:
                        // a store that fails it must not turn the answer into 1013, whose retry would restore the session.
                        await writer.EndInStoreAsync().ConfigureAwait(false);
                        return (await LostOnHelloAsync(carrier, hello.SessionId).ConfigureAwait(false), null, false);
                    }
                }

                Fenced(local, "another node served it since");
            }
            else
            {
                lease = await journal.AcquireAsync(hello.SessionId, Options.ResumeWindow).ConfigureAwait(false);
            }

            var snapshot = await journal.ReadAsync(hello.SessionId).ConfigureAwait(false);
            if (snapshot is null)
            {
                return (await LostOnHelloAsync(carrier, hello.SessionId).ConfigureAwait(false), null, false);
            }

            var session = Restore(snapshot, carrier.Connection.User);
            session.Journal = new SessionJournalWriter(session, this, journal, lease, snapshot.NextOutboundSequence - 1, snapshot.LastInboundDelivered, snapshot.OutboundAcknowledged);
            _sessions[session.Id] = session;
            foreach (var group in session.Groups)
            {
                AddToGroup(group, session);
            }

            return (null, session, true);
        }
        catch (SessionStoreUnavailableException e)
        {
            return (new OpenOutcome(OpenKind.Unavailable, Detail: e.Message), null, false);
        }
    }

    /// <summary>The socket under a session ended: keep the session for its window.</summary>
    internal void Detached(LifelineSession session, SessionCarrier carrier)
    {
        if (!session.Detach(carrier) || session.IsEnded || session.IsFrozen)
        {
            return;
        }

        // With a shared store: its keys live a resume window from the last commit, and the renewals only cover sessions
        // with a socket. One now makes the store keep the session a full window from the disconnect, as this node does.
        if (!_server.IsDraining || !Options.PersistOnDrain)
        {
            session.Journal?.RequestRenew(); // a drain that persists commits every session itself
        }

        var generation = session.Generation;
        _ = ExpireLaterAsync(session, generation);
    }

    /// <summary>Ends a session that cannot continue losslessly.</summary>
    internal void Lose(LifelineSession session, SessionLostReason reason, bool tellClient, bool countAsLost = true)
    {
        // Marked with the end: a carrier that wakes to the ended session must know the client is told (5.7).
        var telling = tellClient && session.Carrier is not null;

        // Unread messages are dropped, not left for the handler: the SessionLost frame (and the client's own account of
        // a loss it declared) counts them as lost, and the client's application may send them again. The message the
        // handler holds counts as delivered: it has it. With a shared store, under the gate its commits read the cursor by.
        if (!session.TryEnd(reason, discardUnread: true, beforeReadsEnd: session.Journal is { } journal
                ? () => journal.WithGate(session.Inbox.EndReads)
                : session.Inbox.EndReads, clientTold: telling))
        {
            return; // ended by someone else, who said whether the client is told
        }

        if (countAsLost)
        {
            _lost.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));
            SessionLog.Lost(Logger, session.Id, reason.ToString());
        }

        if (telling && session.Carrier is { } carrier)
        {
            var end = session.Replay.End;
            _ = carrier.SendControlAsync(w => SessionFrameWriter.WriteSessionLost(w,
                new SessionLostFrame(reason, session.Inbound.LastDelivered, end?.Unacknowledged ?? SequenceRange.Empty))).AsTask();
        }

        Forget(session);
    }

    /// <summary>How long a drain waits for handlers to finish the message each one holds before it saves the sessions.</summary>
    private static readonly TimeSpan HandlerFinishBound = TimeSpan.FromSeconds(2);

    /// <summary>Drain: after the 1012 closes, hands every session to the store and writes the drain file.</summary>
    internal async Task SaveOnDrainAsync(CancellationToken cancellationToken)
    {
        if (!Options.PersistOnDrain || Interlocked.Exchange(ref _saved, 1) != 0)
        {
            return;
        }

        // Each handler first finishes the message it holds (its answer goes into the replay buffer or the store), so
        // the snapshots below count as delivered exactly the messages whose answers they carry.
        var held = await Task.WhenAll(_sessions.Values.Where(s => s.IsResumable && !s.IsEnded && !s.HandlerReturned) // no handler to wait for
            .Select(s => s.Inbox.HoldAtBoundaryAsync(HandlerFinishBound, Time, cancellationToken))).ConfigureAwait(false);
        if (held.Count(finished => !finished) is var unfinished and > 0)
        {
            SessionLog.HandlersStillBusy(Logger, unfinished, HandlerFinishBound);
        }

        var now = Time.GetUtcNow();
        var count = 0;
        if (_journal is not null)
        {
            // Everything sent or acknowledged is in the store already: freeze, let the writers finish, commit the state.
            var saved = await Task.WhenAll(_sessions.Values.Where(s => s.IsResumable && !s.IsEnded && s.Journal is not null).Select(async session =>
            {
                var locked = await session.SendLock.WaitAsync(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
                SessionSnapshot snapshot;
                try
                {
                    snapshot = session.FreezeLocked(now, Options.ResumeWindow);
                }
                finally
                {
                    if (locked)
                    {
                        session.SendLock.Release();
                    }
                }

                await session.Journal!.FinishAsync(snapshot, TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false);
                return 1;
            })).ConfigureAwait(false);
            SessionLog.Saved(Logger, saved.Length, "the shared session store");
            return;
        }

        try
        {
            var failed = 0;
            (SessionId Id, Exception Error)? firstFailure = null;
            foreach (var session in _sessions.Values.Where(s => s.IsResumable && !s.IsEnded && !s.HandlerReturned))
            {
                // Wait briefly for a send in progress, so state and replay buffer are saved together.
                var locked = await session.SendLock.WaitAsync(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
                try
                {
                    await Store.SaveAsync(session.FreezeLocked(now, Options.ResumeWindow), cancellationToken).ConfigureAwait(false);
                    count++;
                }
#pragma warning disable CA1031 // One session the store refuses (full, for one) must not cost the others their save.
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
#pragma warning restore CA1031
                {
                    failed++;
                    firstFailure ??= (session.Id, e);
                }
                finally
                {
                    if (locked)
                    {
                        session.SendLock.Release();
                    }
                }
            }

            if (firstFailure is { } first)
            {
                SessionLog.SomeNotSaved(Logger, failed, failed + count, first.Id, first.Error);
            }

            if (Store is InMemorySessionStore memory)
            {
                await memory.SaveToFileAsync(DrainFilePath, cancellationToken).ConfigureAwait(false);
            }

            SessionLog.Saved(Logger, count, Store is InMemorySessionStore ? DrainFilePath : Store.GetType().Name);
        }
#pragma warning disable CA1031 // A failed save must not stop the shutdown; the sessions are then answered SessionLost.
        catch (Exception e)
#pragma warning restore CA1031
        {
            SessionLog.SaveFailed(Logger, e);
        }
    }

    /// <summary>Start: loads the drain file into the default store (missing, stale or corrupt: logged and ignored).</summary>
    internal async Task LoadOnStartAsync(CancellationToken cancellationToken)
    {
        if (Options.PersistOnDrain && Store is InMemorySessionStore memory)
        {
            await memory.LoadFromFileAsync(DrainFilePath, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<OpenOutcome> LostOnHelloAsync(SessionCarrier carrier, SessionId id)
    {
        SessionLog.NotFound(Logger, carrier.Connection.Id, id);
        // Not in sessions_lost: a session that expired here was counted there when it expired, and a client may ask
        // again and again for the same one.
        _notFound.Add(1);
        await carrier.SendControlAsync(w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(SessionLostReason.NotFound, 0, SequenceRange.Empty))).ConfigureAwait(false);
        return new OpenOutcome(OpenKind.Lost);
    }

    private LifelineSession Restore(SessionSnapshot snapshot, ClaimsPrincipal user)
    {
        var replay = new ReplayBuffer(Options.Replay, Time, snapshot.OutboundAcknowledged) { IdleFreeBytes = IdleReplayFreeBytes };
        foreach (var message in snapshot.Unacknowledged)
        {
            replay.Restore(message.Sequence, message.IsText, message.Payload.Span);
        }

        var state = new SessionStateBag(Options.StateMaxEntries, Options.StateMaxBytes);
        foreach (var (key, value) in snapshot.State)
        {
            state.TrySet(key, value);
        }

        return new LifelineSession(this, snapshot.Id, snapshot.TokenHash, snapshot.UserId, user, true, replay,
            new InboundSequencer(Options.Ack, Time, snapshot.LastInboundDelivered), state, snapshot.Groups, snapshot.CreatedAt, Options.InboxCapacity, Options.InboxMaxBytes);
    }

    private void StartHandler(LifelineSession session, Func<LifelineSession, CancellationToken, Task> handler) =>
        _ = Task.Run(async () =>
        {
            var failed = false;
            try
            {
                await SessionHandlerFlow.RunAsync(session, handler, session.Ending).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (session.Ending.IsCancellationRequested)
            {
                // The session ended or was handed to the store: the handler's normal end.
            }
#pragma warning disable CA1031 // One handler's failure must not affect other sessions.
            catch (Exception e)
#pragma warning restore CA1031
            {
                SessionLog.HandlerFailed(Logger, session.Id, e);
                failed = true;
                if (session.Carrier is { } carrier)
                {
                    // A send the store did not confirm in time is the store being away for now, not a bug of the handler:
                    // the client is told to come back after the hint, as a Hello that finds the store away is.
                    _ = e is SessionStoreUnavailableException
                        ? carrier.Connection.CloseAsync(CloseCode.TryAgainLater, RetryHint.AppendTo("session store unavailable", TryAgainLaterHint), CancellationToken.None)
                        : carrier.Connection.CloseAsync(CloseCode.InternalError, "internal error", CancellationToken.None);
                }
            }

            if (!failed && session.Journal is { } journal && !session.IsEnded && !session.IsFrozen)
            {
                await journal.WaitForStoredAsync(Options.StoreWriteTimeout).ConfigureAwait(false); // what it sent goes out before the 1000
            }

            if (session.IsFrozen)
            {
                return; // saved by a drain: the next process continues it
            }

            // A failed handler's session is not kept: its resume is told SessionLost and starts anew, rather than getting
            // the replay and a 1000 that stops the client.
            if (failed || !await KeepForTheResumeAsync(session).ConfigureAwait(false))
            {
                await EndAfterHandlerAsync(session).ConfigureAwait(false);
            }
        });

    /// <summary>
    /// How long the end after a handler waits for the session's send lock before it closes anyway, unless a resume's
    /// replay holds it (then it waits on, step by step: each of its frames is bounded by the send timeout).
    /// </summary>
    private static readonly TimeSpan EndAfterHandlerLockBound = TimeSpan.FromSeconds(10);

    /// <summary>Tests: runs when the end after a handler begins, before it waits for the session's send lock.</summary>
    internal Action? EndAfterHandlerBeganForTest { get; set; }

    /// <summary>
    /// The handler is done: the session is over. Its socket closes normally after what is queued. Under the send lock,
    /// which a resume holds from its attachment to the last replayed frame: the end either comes first (the resume then
    /// finds the session ended and says SessionLost) or finds the new socket with its replay queued, so the 1000 follows
    /// the replay. Before, with a shared store (which keeps no session for the resume), it could close the new socket
    /// in the middle of the replay: the client got a 1000 and only part of what it was owed, or none, without a word.
    /// </summary>
    private async Task EndAfterHandlerAsync(LifelineSession session)
    {
        EndAfterHandlerBeganForTest?.Invoke();
        bool locked;
        while (!(locked = await session.SendLock.WaitAsync(EndAfterHandlerLockBound).ConfigureAwait(false)) && session.Carrier is { IsCatchingUp: true })
        {
            // A resume replays to a slow client: its 1000 must still come after the last frame.
        }

        try
        {
            if (session.IsFrozen)
            {
                return; // a drain froze it meanwhile (under this lock): saved for the next process, which continues it
            }

            if (session.TryEnd(SessionLostReason.NotFound) && session.Carrier is { } carrier)
            {
                _ = carrier.Connection.CloseAsync(CloseCode.NormalClosure, null, CancellationToken.None);
            }
        }
        finally
        {
            if (locked)
            {
                session.SendLock.Release();
            }
        }

        Forget(session);
    }

    /// <summary>
    /// The handler returned while the session had no socket, and the client has not acknowledged everything sent (a
    /// job's last answer, written while its link was down): ending now would lose it unseen, the resume told only "not
    /// found". The session stays resumable for the rest of its window instead, without a handler or groups; the resume
    /// delivers what is left and then ends it. Not with a shared store, whose other nodes would start a handler for it
    /// again, nor at a drain, which does not save it.
    /// </summary>
    private async Task<bool> KeepForTheResumeAsync(LifelineSession session)
    {
        if (session.Journal is not null || !session.IsResumable || session.IsEnded || _server.IsDraining || session.Replay.Count == 0)
        {
            return false; // the usual case, decided without waiting for the send lock: nothing owed
        }

        // Under the send lock, which a resume holds while it attaches and replays: either it finds the mark afterwards
        // and ends the session, or this finds its socket once the replay is queued and ends it as usual (the replay
        // goes out before the close). Deciding from a socket seen outside the lock closed it in the middle of a replay.
        await session.SendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (session.Carrier is not null || session.IsEnded || session.IsFrozen || session.Replay.Count == 0)
            {
                return false;
            }

            session.MarkHandlerReturned();
        }
        finally
        {
            session.SendLock.Release();
        }

        foreach (var group in session.Groups)
        {
            session.LeaveGroup(group); // nothing more for it but what it already holds
        }

        return true;
    }

    private async Task ExpireLaterAsync(LifelineSession session, long generation)
    {
        try
        {
            await Task.Delay(Options.ResumeWindow, Time, session.Ending).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        if (!StillExpired())
        {
            return;
        }

        if (ExpiryCheckedForTest is { } hook)
        {
            await hook().ConfigureAwait(false);
        }

        // Again under the send lock, which a resume holds while it attaches: a resume that attached after the check above
        // keeps its session (before, it was ended under the resumed socket, told nothing, and closed 1000 at its next
        // message); one that attaches after this end finds it ended and answers SessionLost.
        var lost = false;
        await session.SendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (StillExpired())
            {
                Lose(session, SessionLostReason.NotFound, tellClient: false);
                lost = true;
            }
        }
        finally
        {
            session.SendLock.Release();
        }

        ExpiryDecidedForTest?.Invoke(lost);

        bool StillExpired() => session.Generation == generation && session.Carrier is null && !session.IsFrozen && !_server.IsDraining;
    }

    private void Forget(LifelineSession session)
    {
        // Once per copy: the second call, when a fenced copy's handler returns, came after a resume may have restored a
        // new copy under the same id, and wrote over its store-removal entry.
        if (!session.MarkForgotten())
        {
            return;
        }

        session.Journal?.FailPending(new InvalidOperationException($"Session {session.Id} ended before this send was stored."));
        _sessions.TryRemove(new KeyValuePair<SessionId, LifelineSession>(session.Id, session));
        if (session.Journal is { } journal && session.IsEnded && !session.IsFrozen)
        {
            // Out of the store too; a resume that reaches this node meanwhile waits for it (see OpenJournaledInTurnAsync).
            var ending = journal.EndInStoreAsync();
            _endingInStore[session.Id] = ending;
            _ = ending.ContinueWith(_ => _endingInStore.TryRemove(new KeyValuePair<SessionId, Task>(session.Id, ending)), CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        foreach (var group in session.Groups)
        {
            RemoveFromGroup(group, session);
        }

        session.ReleaseBuffers();
    }

    /// <summary>
    /// Takes a place for a new session within <see cref="LifelineSessionOptions.MaxSessions"/>, false when none is left;
    /// the caller gives it back (<see cref="_newReserved"/>) once the session is listed or given up. Counted from the
    /// Hello on, so Hellos answered together (a shared store's round trips in between) cannot all pass the limit.
    /// </summary>
    private bool TryReserveNew()
    {
        var reserved = Interlocked.Increment(ref _newReserved);
        if (Options.MaxSessions is { } max && _sessions.Count + reserved - 1 >= max)
        {
            Interlocked.Decrement(ref _newReserved);
            return false;
        }

        return true;
    }

    /// <summary>Closes a socket whose new session found <see cref="LifelineSessionOptions.MaxSessions"/> held: 1013 with a retry hint.</summary>
    internal async Task RefuseFullAsync(LifelineConnection connection)
    {
        _refusedFull.Add(1);
        SessionLog.SessionsFull(Logger, connection.Id, Options.MaxSessions ?? 0);
        await connection.CloseAsync(CloseCode.TryAgainLater, RetryHint.AppendTo("too many sessions", TryAgainLaterHint), CancellationToken.None).ConfigureAwait(false);
    }

    private async Task RunPlainAsync(LifelineConnection connection, Func<LifelineSession, CancellationToken, Task> handler)
    {
        if (!TryReserveNew())
        {
            await RefuseFullAsync(connection).ConfigureAwait(false);
            return;
        }

        var token = ResumeToken.Create();
        var session = new LifelineSession(this, token.DeriveSessionId(), token.ComputeHash(), UserIdOf(connection.User), connection.User, false,
            new ReplayBuffer(Options.Replay, Time) { IdleFreeBytes = IdleReplayFreeBytes }, new InboundSequencer(Options.Ack, Time),
            new SessionStateBag(Options.StateMaxEntries, Options.StateMaxBytes), [], Time.GetUtcNow(), Options.InboxCapacity, Options.InboxMaxBytes, connection);
        _sessions[session.Id] = session;
        Interlocked.Decrement(ref _newReserved); // listed now
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(connection.Closing, session.Ending);
        var pump = Task.Run(async () =>
        {
            long sequence = 0;
            try
            {
                // Bounded by the session: when the handler returns, the pump stops and the socket closes (1000).
                await foreach (var message in connection.Messages.ReadAllAsync(session.Ending).ConfigureAwait(false))
                {
                    await session.Inbox.WriteAsync(++sequence, message, session.Ending).ConfigureAwait(false);
                    session.Inbox.HandOver();
                }
            }
            catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
            {
                // The session ended first.
            }
            finally
            {
                session.Inbox.Complete();
            }
        });
        try
        {
            await SessionHandlerFlow.RunAsync(session, handler, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            // The connection closed.
        }
        finally
        {
            session.TryEnd(SessionLostReason.NotFound);
            Forget(session);
            await pump.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends to every member at once. A member whose replay buffer stays full for <see cref="LifelineServerOptions.SendTimeout"/>
    /// (its client does not acknowledge) loses its session (SessionLost, buffer full) rather than hold up the others:
    /// one stalled member must not stall a group send or a broadcast. A member's full socket never waits at all
    /// (<see cref="SessionCarrier.QueueDataOrCloseSlow"/>), except one catching up after a resume, whose buffer is full by
    /// design: that copy waits for room up to the same deadline, then the socket is closed with 4008.
    /// </summary>
    private async Task<int> SendToManyAsync(LifelineSession[] members, ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken)
    {
        if (members.Length == 0)
        {
            return 0;
        }

        using var deadline = new CancellationTokenSource(_serverOptions.SendTimeout, Time);
        var results = await Task.WhenAll(members.Select(member => SendToMemberAsync(member, data, type, numbered: null, deadline.Token, cancellationToken))).ConfigureAwait(false);
        return results.Sum();
    }

    /// <summary>
    /// One member's copy of a group send or broadcast: 1 when sent (or numbered and waiting for the store), 0 when the member ended meanwhile or is lost because
    /// it could not take the message (told, and logged).
    /// </summary>
    private async Task<int> SendToMemberAsync(LifelineSession member, ReadOnlyMemory<byte> data, WebSocketMessageType type, TaskCompletionSource? numbered, CancellationToken deadline,
        CancellationToken cancellationToken)
    {
        try
        {
            await member.SendToMemberAsync(data, type, numbered, deadline, cancellationToken).ConfigureAwait(false);
            return 1;
        }
        catch (ReplayBufferFullException)
        {
            // ReplayBufferFullMode.Fail, and this member's buffer is full: as for a member full past the deadline
            // below, end its session and say so rather than skip it silently (ReplayBufferFullException is an
            // InvalidOperationException: caught here first).
            SessionLog.FullMember(Logger, member.Id);
            Lose(member, SessionLostReason.BufferFull, tellClient: true);
            return 0;
        }
        catch (InvalidOperationException)
        {
            return 0; // ended or saved meanwhile
        }
        catch (SessionStoreUnavailableException)
        {
            // Numbered, and kept in its place: it goes out when the store confirms it (or the client is told SessionLost).
            // One member's slow store write must not fail the group send, nor keep it from the other nodes' members.
            return 1;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // Only the wait for room ends with the deadline: this member did not acknowledge for that long. Not
            // numbered, so not replayed either: end the session and say so, never skip the member silently.
            SessionLog.SlowMember(Logger, member.Id, _serverOptions.SendTimeout);
            Lose(member, SessionLostReason.BufferFull, tellClient: true);
            return 0;
        }
    }

    private static string? UserIdOf(ClaimsPrincipal? user) =>
        user?.Identity?.IsAuthenticated == true
            ? user.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? user.Identity.Name
            : null;

    private static string Sanitize(string name) =>
        string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
