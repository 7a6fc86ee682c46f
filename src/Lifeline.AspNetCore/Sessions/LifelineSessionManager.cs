using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text;
using Lifeline.CloseCodes;
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
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _started;
    private readonly Counter<long> _resumed;
    private readonly Counter<long> _lost;
    private readonly Counter<long> _replayed;
    private readonly ConcurrentDictionary<SessionId, LifelineSession> _sessions = new();
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<SessionId, LifelineSession>> _groups = new(StringComparer.Ordinal);
    private readonly LifelineServer _server;
    private readonly LifelineServerOptions _serverOptions;
    private int _saved;

    /// <summary>Creates the manager; normally resolved from DI.</summary>
    public LifelineSessionManager(IOptions<LifelineSessionOptions> options, IOptions<LifelineServerOptions> serverOptions, ISessionStore store, LifelineServer server,
        ILogger<LifelineSessionManager>? logger = null, TimeProvider? timeProvider = null, IHostEnvironment? environment = null, IMeterFactory? meterFactory = null)
    {
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
        _meter.CreateObservableGauge("lifeline.server.session_replay_bytes",
            () => _sessions.Values.Sum(s => s.IsResumable && !s.IsEnded ? s.Unacknowledged.Bytes : 0),
            "By", "Payload bytes held in session replay buffers (unacknowledged).");
    }

    /// <summary>The options.</summary>
    public LifelineSessionOptions Options { get; }

    /// <summary>Where sessions wait to be resumed by another process.</summary>
    public ISessionStore Store { get; }

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

    /// <summary>Sends to every session of a group (each copy numbered and replayed by its session); returns how many it reached.</summary>
    public Task<int> SendToGroupAsync(string group, ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default) =>
        SendToManyAsync(_groups.TryGetValue(group, out var members) ? [.. members.Values] : [], data, type, cancellationToken);

    /// <summary>Sends a text message to every session of a group.</summary>
    public Task<int> SendToGroupAsync(string group, string text, CancellationToken cancellationToken = default) =>
        SendToGroupAsync(group, Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);

    /// <summary>Sends to every session of this process.</summary>
    public Task<int> SendToAllAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default) =>
        SendToManyAsync([.. _sessions.Values], data, type, cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    internal void AddToGroup(string group, LifelineSession session) =>
        _groups.GetOrAdd(group, _ => new ConcurrentDictionary<SessionId, LifelineSession>())[session.Id] = session;

    internal void RemoveFromGroup(string group, LifelineSession session)
    {
        if (_groups.TryGetValue(group, out var members))
        {
            members.TryRemove(session.Id, out _);
        }
    }

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
            var token = ResumeToken.Create();
            var created = new LifelineSession(this, token.DeriveSessionId(), token.ComputeHash(), userId, connection.User, false,
                new ReplayBuffer(Options.Replay, Time), new InboundSequencer(Options.Ack, Time),
                new SessionStateBag(Options.StateMaxEntries, Options.StateMaxBytes), [], Time.GetUtcNow(), Options.InboxCapacity);
            _sessions[created.Id] = created;
            await created.SendLock.WaitAsync().ConfigureAwait(false);
            try
            {
                created.Attach(carrier, connection.User);
                await carrier.SendControlAsync(w => SessionFrameWriter.WriteWelcome(w, new WelcomeFrame(SessionProtocol.Version, created.Id, token,
                    Options.ResumeWindow, _serverOptions.MaxMessageSize, Options.Replay.MaxMessages, Options.Replay.MaxBytes))).ConfigureAwait(false);
            }
            finally
            {
                created.SendLock.Release();
            }

            _started.Add(1);
            SessionLog.Started(Logger, created.Id, connection.Id);
            StartHandler(created, handler);
            return new OpenOutcome(OpenKind.Opened, created);
        }

        // 5.6 step 1: the token must belong to the id; needs no lookup, so it reveals nothing.
        if (!hello.ResumeToken.BelongsTo(hello.SessionId))
        {
            return new OpenOutcome(OpenKind.Refused, Detail: "token does not belong to the id");
        }

        var restored = false;
        if (!_sessions.TryGetValue(hello.SessionId, out var existing) || existing.IsEnded || existing.IsFrozen)
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
        try
        {
            session.Replay.Acknowledge(hello.LastReceived);
            if (session.Replay.BeginReplay(hello.LastReceived, out var lease) != ReplayStatus.Ready)
            {
                var lost = SequenceRange.FromBounds(hello.LastReceived + 1, session.Replay.LastSequence);
                await carrier.SendControlAsync(w => SessionFrameWriter.WriteSessionLost(w,
                    new SessionLostFrame(SessionLostReason.ReplayUnavailable, session.Inbound.LastDelivered, lost))).ConfigureAwait(false);
                Lose(session, SessionLostReason.ReplayUnavailable, tellClient: false);
                return new OpenOutcome(OpenKind.Lost);
            }

            using (lease)
            {
                previous = session.Attach(carrier, connection.User);
                await carrier.SendControlAsync(w => SessionFrameWriter.WriteResumed(w, new ResumedFrame(session.Inbound.LastDelivered, lease!.Frames.Count))).ConfigureAwait(false);
                foreach (var frame in lease!.Frames)
                {
                    await carrier.SendDataAsync(session, frame.Sequence, frame.IsText, frame.Payload).ConfigureAwait(false);
                }

                replayed = lease.Frames.Count;
            }
        }
        finally
        {
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
        if (restored)
        {
            StartHandler(session, handler);
        }

        return new OpenOutcome(OpenKind.Opened, session);
    }

    /// <summary>The socket under a session ended: keep the session for its window.</summary>
    internal void Detached(LifelineSession session, SessionCarrier carrier)
    {
        if (!session.Detach(carrier) || session.IsEnded || session.IsFrozen)
        {
            return;
        }

        var generation = session.Generation;
        _ = ExpireLaterAsync(session, generation);
    }

    /// <summary>Ends a session that cannot continue losslessly.</summary>
    internal void Lose(LifelineSession session, SessionLostReason reason, bool tellClient)
    {
        if (!session.TryEnd(reason))
        {
            return;
        }

        _lost.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));
        SessionLog.Lost(Logger, session.Id, reason.ToString());
        if (tellClient && session.Carrier is { } carrier)
        {
            var end = session.Replay.End;
            _ = carrier.SendControlAsync(w => SessionFrameWriter.WriteSessionLost(w,
                new SessionLostFrame(reason, session.Inbound.LastDelivered, end?.Unacknowledged ?? SequenceRange.Empty))).AsTask();
        }

        Forget(session);
    }

    /// <summary>Drain: after the 1012 closes, hands every session to the store and writes the drain file.</summary>
    internal async Task SaveOnDrainAsync(CancellationToken cancellationToken)
    {
        if (!Options.PersistOnDrain || Interlocked.Exchange(ref _saved, 1) != 0)
        {
            return;
        }

        var now = Time.GetUtcNow();
        var count = 0;
        try
        {
            foreach (var session in _sessions.Values.Where(s => s.IsResumable && !s.IsEnded))
            {
                // Wait briefly for a send in progress, so state and replay buffer are saved together.
                var locked = await session.SendLock.WaitAsync(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
                try
                {
                    await Store.SaveAsync(session.FreezeLocked(now, Options.ResumeWindow), cancellationToken).ConfigureAwait(false);
                    count++;
                }
                finally
                {
                    if (locked)
                    {
                        session.SendLock.Release();
                    }
                }
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
        _lost.Add(1, new KeyValuePair<string, object?>("reason", nameof(SessionLostReason.NotFound)));
        await carrier.SendControlAsync(w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(SessionLostReason.NotFound, 0, SequenceRange.Empty))).ConfigureAwait(false);
        return new OpenOutcome(OpenKind.Lost);
    }

    private LifelineSession Restore(SessionSnapshot snapshot, ClaimsPrincipal user)
    {
        var replay = new ReplayBuffer(Options.Replay, Time, snapshot.OutboundAcknowledged);
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
            new InboundSequencer(Options.Ack, Time, snapshot.LastInboundDelivered), state, snapshot.Groups, snapshot.CreatedAt, Options.InboxCapacity);
    }

    private void StartHandler(LifelineSession session, Func<LifelineSession, CancellationToken, Task> handler) =>
        _ = Task.Run(async () =>
        {
            try
            {
                await handler(session, session.Ending).ConfigureAwait(false);
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
                if (session.Carrier is { } failed)
                {
                    _ = failed.Connection.CloseAsync(CloseCode.InternalError, "internal error", CancellationToken.None);
                }
            }

            if (session.IsFrozen)
            {
                return; // saved by a drain: the next process continues it
            }

            // The handler is done: the session is over. Its socket closes normally after what is queued.
            if (session.TryEnd(SessionLostReason.NotFound) && session.Carrier is { } carrier)
            {
                _ = carrier.Connection.CloseAsync(CloseCode.NormalClosure, null, CancellationToken.None);
            }

            Forget(session);
        });

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

        if (session.Generation == generation && session.Carrier is null && !session.IsFrozen && !_server.IsDraining)
        {
            Lose(session, SessionLostReason.NotFound, tellClient: false);
        }
    }

    private void Forget(LifelineSession session)
    {
        _sessions.TryRemove(new KeyValuePair<SessionId, LifelineSession>(session.Id, session));
        foreach (var group in session.Groups)
        {
            RemoveFromGroup(group, session);
        }

        session.ReleaseBuffers();
    }

    private async Task RunPlainAsync(LifelineConnection connection, Func<LifelineSession, CancellationToken, Task> handler)
    {
        var token = ResumeToken.Create();
        var session = new LifelineSession(this, token.DeriveSessionId(), token.ComputeHash(), UserIdOf(connection.User), connection.User, false,
            new ReplayBuffer(Options.Replay, Time), new InboundSequencer(Options.Ack, Time),
            new SessionStateBag(Options.StateMaxEntries, Options.StateMaxBytes), [], Time.GetUtcNow(), Options.InboxCapacity, connection);
        _sessions[session.Id] = session;
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
            await handler(session, linked.Token).ConfigureAwait(false);
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

    private static async Task<int> SendToManyAsync(LifelineSession[] members, ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(members.Select(async member =>
        {
            try
            {
                await member.SendAsync(data, type, cancellationToken).ConfigureAwait(false);
                return 1;
            }
            catch (InvalidOperationException)
            {
                return 0; // ended or saved meanwhile
            }
        })).ConfigureAwait(false);
        return results.Sum();
    }

    private static string? UserIdOf(ClaimsPrincipal? user) =>
        user?.Identity?.IsAuthenticated == true
            ? user.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? user.Identity.Name
            : null;

    private static string Sanitize(string name) =>
        string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
