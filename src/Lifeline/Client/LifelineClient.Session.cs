using System.Buffers;
using System.Globalization;
using System.Net.WebSockets;
using Lifeline.CloseCodes;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.Client;

/// <summary>The client's state of one session (docs/protocol.md section 5): identity, outbound log and inbound cursor.</summary>
internal sealed class ClientSession(SessionId id, ResumeToken token, ReplayBuffer replay, InboundSequencer inbound, int maxFrameBytes,
    int peerReplayMessages, long peerReplayBytes)
{
    /// <summary>The server's replay bounds (Welcome): the most it sends past what the client acknowledged.</summary>
    public int PeerReplayMessages { get; } = peerReplayMessages;

    /// <inheritdoc cref="PeerReplayMessages"/>
    public long PeerReplayBytes { get; } = peerReplayBytes;

    public SessionId Id { get; } = id;

    public ResumeToken Token { get; } = token;

    public ReplayBuffer Replay { get; } = replay;

    public InboundSequencer Inbound { get; } = inbound;

    /// <summary>The server's frame limit from Welcome.</summary>
    public int MaxFrameBytes { get; } = maxFrameBytes;

    /// <summary>
    /// The client ended this session (<see cref="LifelineClient"/>'s EndSession): what the server sends on its socket from
    /// now on is not delivered (5.7), since the client tells the server, or told it, what it last received.
    /// </summary>
    public bool IsEnded => Volatile.Read(ref _ended) != 0;

    private int _ended;

    /// <summary>Marks the session ended; true for the one call that ended it (that caller reports the end, no other).</summary>
    public bool MarkEnded() => Interlocked.Exchange(ref _ended, 1) == 0;
}

/// <summary>The outcome of a session handshake on one socket.</summary>
internal readonly record struct SessionHandshake(bool Resumed, long ReplayedToServer, long ReplayedFromServer);

public sealed partial class LifelineClient
{
    // Written by the connection loop (handshake), the receive loop and the queue's writer of the current connection
    // only; one connection runs at a time, so reads from those loops see a stable value. Other threads read it through Volatile.
    private ClientSession? _session;
    private readonly SessionModeState? _sessionMode; // session mode only: a plain client does not carry these

    /// <summary>What only a session-mode client needs, in one object.</summary>
    private sealed class SessionModeState
    {
#pragma warning disable SA1401, CA1051 // Fields, for Interlocked and Volatile: a private holder of the client's own state.
        public AckWake? AckWake; // the current connection's, made before its receive loop starts
        public ArrayBufferWriter<byte>? AckFrame; // reused under the send lock
        public SessionLostEventArgs? LastLost;
        public long Started;
        public long Resumed;
        public long Lost;
#pragma warning restore SA1401, CA1051
    }

    /// <summary>
    /// Session mode: a session could not continue losslessly (the server lost it, its window expired, a resume was
    /// refused, or a replay buffer gave up). Says what was lost. What follows depends on how it was lost: after a
    /// SessionLost answer to a resume the client starts a new session at once; after a refused resume (1008) or a
    /// session lost on an open connection, that connection ends and the reconnect policy decides whether a new session
    /// follows (the default policy stops on 1008).
    /// Raised off the I/O loop; handler exceptions are logged.
    /// </summary>
    public event EventHandler<SessionLostEventArgs>? SessionLost;

    /// <summary>Session mode: the id of the current session; null before the first Welcome and in plain mode.</summary>
    public SessionId? SessionId => Volatile.Read(ref _session)?.Id;

    /// <summary>Session mode: the most recent session loss; null if none.</summary>
    public SessionLostEventArgs? LastSessionLost => _sessionMode is { } mode ? Volatile.Read(ref mode.LastLost) : null;

    /// <summary>
    /// Session mode: how many sent messages the server has not acknowledged yet (held for replay); 0 in plain mode and
    /// before the first session. Messages still in the send queue are not counted here.
    /// </summary>
    public int UnacknowledgedMessages => Volatile.Read(ref _session)?.Replay.Count ?? 0;

    /// <summary>Session mode: how many sessions started (Welcome), resumed (Resumed) and were lost.</summary>
    public (long Started, long Resumed, long Lost) SessionCounts =>
        _sessionMode is { } mode ? (Interlocked.Read(ref mode.Started), Interlocked.Read(ref mode.Resumed), Interlocked.Read(ref mode.Lost)) : (0, 0, 0);

    /// <summary>
    /// Session mode: sends a message like <see cref="SendAsync"/> and completes when the server acknowledges it (it was
    /// handed to the server's application): true then, false when it never will be (its session was lost, or the client
    /// closed first; the message is then unconfirmed).
    /// </summary>
    /// <exception cref="InvalidOperationException">Sessions are off (<see cref="LifelineClientOptions.Session"/> is null).</exception>
    /// <exception cref="Lifeline.Session.ReplayBufferFullException">The replay buffer is full and its mode is <see cref="Lifeline.Session.ReplayBufferFullMode.Fail"/>.</exception>
    public async Task<bool> SendAndWaitAckAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default)
    {
        if (_options.Session is null)
        {
            throw new InvalidOperationException("Acknowledgements need a session: set LifelineClientOptions.Session.");
        }

        ThrowIfTooLargeForSession(data);
        var acknowledged = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await EnqueueAsync(data, type, acknowledged, cancellationToken).ConfigureAwait(false);
        return await acknowledged.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends Hello and waits for Welcome, Resumed or SessionLost (then a new Hello). On Resumed, resends the client's
    /// unacknowledged messages before returning, so they go out ahead of anything new.
    /// </summary>
    private async Task<(SessionHandshake? Result, CloseRecord? Close)> HandshakeAsync(ClientWebSocket socket, TimeSpan downtime, CancellationToken stop)
    {
        if (socket.SubProtocol != SessionProtocol.SubProtocol)
        {
            return (null, await CloseWithAsync(socket, CloseCode.MandatoryExtension, "lifeline.v1 required",
                "the server did not select the lifeline.v1 subprotocol; sessions need a session-aware endpoint").ConfigureAwait(false));
        }

        var options = _options.Session!;
        using var timeout = new CancellationTokenSource(options.HandshakeTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, timeout.Token);
        var buffer = new ArrayBufferWriter<byte>(256);
        var session = _session;
        var afterLost = false; // a SessionLost went either way on this socket: the lost session's frames may still come (5.7)
        try
        {
            await SendHelloAsync(socket, session, linked.Token).ConfigureAwait(false);
            while (true)
            {
                var (type, close) = await ReceiveWholeAsync(socket, buffer, linked.Token).ConfigureAwait(false);
                if (close is not null)
                {
                    if (session is not null && close.Code == CloseCode.PolicyViolation && close.Reason == SessionProtocol.RefusedReason)
                    {
                        // A refused resume (wrong token, another user's session): report it, never try that token again.
                        // Only with its reason (docs/protocol.md 5.9): another 1008 (the server's authorization refused
                        // this connection) says nothing of the session, which a later resume may still reach.
                        var unconfirmed = EndSession(session, SessionLostReason.NotFound).Unacknowledged;
                        ReportSessionLost(new SessionLostEventArgs(session.Id, SessionLostReason.NotFound, refused: true, lostByServer: true, 0,
                            SequenceRange.Empty, unconfirmed, _time.GetUtcNow()));
                    }

                    return (null, close);
                }

                if (type == WebSocketMessageType.Text)
                {
                    return (null, await CloseWithAsync(socket, CloseCode.UnsupportedData, "session frames are binary", "the server sent a text message in session mode").ConfigureAwait(false));
                }

                var error = SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.WrittenMemory), _options.MaxMessageSize, out var header, out _);
                if (error != SessionFrameError.None)
                {
                    return (null, await CloseWithAsync(socket, error.ToCloseCode(), error.Describe(), $"the server sent a malformed session frame: {error.Describe()}").ConfigureAwait(false));
                }

                switch (header.Type)
                {
                    case SessionFrameType.Welcome:
                        if (header.Welcome.Version != SessionProtocol.Version)
                        {
                            // The lower of the two versions (5.1): this client speaks only its own.
                            return (null, await CloseWithAsync(socket, CloseCode.ProtocolError, "unsupported version",
                                $"the server's Welcome has version {header.Welcome.Version.ToString(CultureInfo.InvariantCulture)}; this client speaks {SessionProtocol.Version.ToString(CultureInfo.InvariantCulture)}").ConfigureAwait(false));
                        }

                        if (session is not null)
                        {
                            // A resume answered with a new session: the server no longer has the old one but did not say
                            // so (5.9 asks for SessionLost). Reported as that SessionLost would be, nothing dropped silently.
                            var notConfirmed = EndSession(session, SessionLostReason.NotFound).Unacknowledged;
                            ReportSessionLost(new SessionLostEventArgs(session.Id, SessionLostReason.NotFound, false, true, 0,
                                SequenceRange.Empty, notConfirmed, _time.GetUtcNow()));
                            session = null;
                        }

                        StartSession(header.Welcome);
                        return (new SessionHandshake(false, 0, 0), null);

                    case SessionFrameType.Resumed when session is not null:
                        var resumed = header.Resumed;
                        if (resumed.LastReceived > session.Replay.LastSequence)
                        {
                            return (null, await CloseWithAsync(socket, CloseCode.ProtocolError, "last received beyond sent",
                                "the server's Resumed states a last received above what the client sent").ConfigureAwait(false));
                        }

                        session.Replay.Acknowledge(resumed.LastReceived);
                        session.Replay.ForgiveDowntime(downtime); // nobody could acknowledge while the link was down
                        if (session.Replay.BeginReplay(resumed.LastReceived, out var lease) == ReplayStatus.Ready)
                        {
                            using (lease)
                            {
                                foreach (var frame in lease!.Frames)
                                {
                                    await SendDataFrameAsync(socket, session, frame.Sequence, frame.IsText, frame.Payload, linked.Token).ConfigureAwait(false);
                                }

                                Interlocked.Increment(ref _sessionMode!.Resumed);
                                _metrics.SessionsResumed.Add(1);
                                _metrics.MessagesReplayed.Add(lease.Frames.Count);
                                Log.SessionResumed(_logger, session.Id, lease.Frames.Count, resumed.ReplayCount);
                                return (new SessionHandshake(true, lease.Frames.Count, resumed.ReplayCount), null);
                            }
                        }

                        // The client no longer holds what the server needs: say so, and start again on this socket.
                        var lost = SequenceRange.FromBounds(resumed.LastReceived + 1, session.Replay.LastSequence);
                        await SendControlFrameAsync(socket, w => SessionFrameWriter.WriteSessionLost(w,
                            new SessionLostFrame(SessionLostReason.ReplayUnavailable, session.Inbound.LastDelivered, lost)), linked.Token).ConfigureAwait(false);
                        EndSession(session, SessionLostReason.ReplayUnavailable);
                        ReportSessionLost(new SessionLostEventArgs(session.Id, SessionLostReason.ReplayUnavailable, false, false, resumed.LastReceived,
                            SequenceRange.Empty, lost, _time.GetUtcNow()));
                        session = null;
                        afterLost = true;
                        await SendHelloAsync(socket, null, linked.Token).ConfigureAwait(false);
                        break;

                    case SessionFrameType.SessionLost when session is not null:
                        var report = header.SessionLost;
                        if (report.LastReceived > session.Replay.LastSequence)
                        {
                            return (null, await CloseWithAsync(socket, CloseCode.ProtocolError, "last received beyond sent",
                                "the server's SessionLost states a last received above what the client sent").ConfigureAwait(false));
                        }

                        var unconfirmedToServer = UnconfirmedToServer(EndSession(session, report.Reason), report);
                        ReportSessionLost(new SessionLostEventArgs(session.Id, report.Reason, false, true, report.LastReceived,
                            report.Lost, unconfirmedToServer, _time.GetUtcNow()));
                        session = null;
                        afterLost = true;
                        await SendHelloAsync(socket, null, linked.Token).ConfigureAwait(false);
                        break;

                    case SessionFrameType.Data or SessionFrameType.Ack or SessionFrameType.SessionLost or SessionFrameType.Resumed when afterLost:
                        break; // in flight from the lost session (a Resumed the server wrote just before it lost it): ignored until Welcome (5.7)

                    default:
                        return (null, await CloseWithAsync(socket, CloseCode.ProtocolError, "unexpected frame",
                            $"the server sent {header.Type} during the session handshake").ConfigureAwait(false));
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            socket.Abort();
            return (null, Ended(CloseCode.AbnormalClosure, CloseInitiator.Transport, null, CloseCause.SessionInterrupted,
                $"no session answer within {options.HandshakeTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s"));
        }
#pragma warning disable CA1031 // Every way the handshake can fail is a way the connection ended.
        catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
#pragma warning restore CA1031
        {
            return (null, ClassifyReceiveFailure(e, socket));
        }
    }

    private void StartSession(in WelcomeFrame welcome)
    {
        var options = _options.Session!;
        var inbound = new InboundSequencer(options.Ack, _time);
        inbound.LimitToPeerReplay(welcome.ReplayMaxMessages, welcome.ReplayMaxBytes);
        var session = new ClientSession(welcome.SessionId, welcome.ResumeToken, new ReplayBuffer(options.Replay, _time), inbound, welcome.MaxFrameBytes,
            welcome.ReplayMaxMessages, welcome.ReplayMaxBytes);
        Volatile.Write(ref _session, session);
        Interlocked.Increment(ref _sessionMode!.Started);
        _metrics.SessionsStarted.Add(1);
        Log.SessionStarted(_logger, session.Id);
    }

    /// <summary>Ends <paramref name="session"/> on this side; returns what its replay buffer held unacknowledged at its end.</summary>
    /// <remarks>
    /// Work out what the server did not confirm from the returned end, not from the buffer before: a send still numbering a
    /// message up to the buffer's end is in it, and one after it never gets a number (it waits for the next session).
    /// </remarks>
    private ReplayBufferEnd EndSession(ClientSession session, SessionLostReason reason) => EndSession(session, reason, out _);

    /// <param name="session">The session to end.</param>
    /// <param name="reason">Why, if this call is the one that ends it.</param>
    /// <param name="first">
    /// Whether this call ended it. The receive loop (a server's SessionLost) and the queue's writer (its append found the
    /// buffer ended) can both end the same session at once: only the first reports it, or the application would get
    /// two SessionLost events for one session, with different unconfirmed ranges.
    /// </param>
    private ReplayBufferEnd EndSession(ClientSession session, SessionLostReason reason, out bool first)
    {
        first = session.MarkEnded(); // first: a receive loop that still holds the session must stop delivering for it
        session.Inbound.End(); // a frame a reader took just before is counted in the SessionLost's "last received", or not delivered
        Interlocked.CompareExchange(ref _session, null, session);
        var end = session.Replay.EndSession(reason); // the first end's, for every caller
        InsideEndSessionForTest?.Invoke();
        session.Replay.Dispose();
        return end;
    }

    /// <summary>Tests: runs in EndSession between the replay buffer's end and its disposal (an append then finds it ended).</summary>
    internal Action? InsideEndSessionForTest { get; set; }

    private void ReportSessionLost(SessionLostEventArgs args)
    {
        Volatile.Write(ref _sessionMode!.LastLost, args);
        Interlocked.Increment(ref _sessionMode.Lost);
        _metrics.SessionsLost.Add(1);
        Log.SessionLost(_logger, args.ToString());
        var handlers = SessionLost;
        if (handlers is null)
        {
            return;
        }

        _ = Task.Run(() =>
        {
            foreach (var handler in handlers.GetInvocationList())
            {
                try
                {
                    ((EventHandler<SessionLostEventArgs>)handler)(this, args);
                }
#pragma warning disable CA1031 // A user's handler must not kill the client.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Log.CallbackFailed(_logger, nameof(SessionLost), e);
                }
            }
        });
    }

    /// <summary>Handles one whole message of an established session; returns how the connection ended when it must end.</summary>
    private async Task<CloseRecord?> OnSessionMessageAsync(ClientWebSocket socket, ClientSession session, WebSocketMessageType type, ReadOnlyMemory<byte> message)
    {
        if (type == WebSocketMessageType.Text)
        {
            return await CloseWithAsync(socket, CloseCode.UnsupportedData, "session frames are binary", "the server sent a text message in session mode").ConfigureAwait(false);
        }

        var error = SessionFrameReader.TryRead(new ReadOnlySequence<byte>(message), _options.MaxMessageSize, out var header, out var payload);
        if (error != SessionFrameError.None)
        {
            return await CloseWithAsync(socket, error.ToCloseCode(), error.Describe(), $"the server sent a malformed session frame: {error.Describe()}").ConfigureAwait(false);
        }

        switch (header.Type)
        {
            case SessionFrameType.Data:
                if (session.Replay.Acknowledge(header.Ack).Status == ReplayAckStatus.BeyondSent)
                {
                    return await CloseWithAsync(socket, CloseCode.ProtocolError, "ack beyond sent", "the server acknowledged a message the client never sent").ConfigureAwait(false);
                }

                switch (session.Inbound.Accept(header.Sequence, (int)payload.Length, IsPastReceiveBounds(), out AckTrigger trigger))
                {
                    case InboundDecision.Deliver:
                        DeliverSessionMessage(payload.FirstSpan, header.IsText);
                        if (trigger != AckTrigger.None)
                        {
                            SignalAck();
                        }

                        return null;
                    case InboundDecision.Duplicate or InboundDecision.Ended: // Ended: the client ended the session meanwhile (5.7)
                        return null;
                    default:
                        return await CloseWithAsync(socket, CloseCode.ProtocolError, "sequence gap",
                            $"the server skipped a sequence number (got {header.Sequence.ToString(CultureInfo.InvariantCulture)}, expected {(session.Inbound.LastDelivered + 1).ToString(CultureInfo.InvariantCulture)})").ConfigureAwait(false);
                }

            case SessionFrameType.Ack:
                return session.Replay.Acknowledge(header.Ack).Status == ReplayAckStatus.BeyondSent
                    ? await CloseWithAsync(socket, CloseCode.ProtocolError, "ack beyond sent", "the server acknowledged a message the client never sent").ConfigureAwait(false)
                    : null;

            case SessionFrameType.SessionLost:
                var report = header.SessionLost;
                if (report.LastReceived > session.Replay.LastSequence)
                {
                    return await CloseWithAsync(socket, CloseCode.ProtocolError, "last received beyond sent",
                        "the server's SessionLost states a last received above what the client sent").ConfigureAwait(false);
                }

                var unconfirmed = UnconfirmedToServer(EndSession(session, report.Reason, out var first), report);
                if (first)
                {
                    ReportSessionLost(new SessionLostEventArgs(session.Id, report.Reason, false, true, report.LastReceived, report.Lost, unconfirmed, _time.GetUtcNow()));
                }

                // A new session starts with the next connection (its Hello is a new-session Hello).
                socket.Abort();
                return Ended(CloseCode.AbnormalClosure, CloseInitiator.Client, null, CloseCause.SessionInterrupted, "the server ended the session; starting a new one");

            default:
                return await CloseWithAsync(socket, CloseCode.ProtocolError, "unexpected frame", $"the server sent {header.Type} on an established session").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The client's messages a server's SessionLost leaves unconfirmed: all unacknowledged ones, or, when the server has a
    /// record of the session (reasons 02-04) and states its last received, those after it (the ones up to it reached its
    /// application). Not found, and reasons this client does not know, have no record (protocol.md 5.2).
    /// </summary>
    private static SequenceRange UnconfirmedToServer(ReplayBufferEnd end, in SessionLostFrame report) =>
        report.Reason is SessionLostReason.ReplayUnavailable or SessionLostReason.BufferFull or SessionLostReason.Expired
            && report.LastReceived > 0 && !end.Unacknowledged.IsEmpty
            ? SequenceRange.FromBounds(Math.Max(report.LastReceived + 1, end.Unacknowledged.First), end.Unacknowledged.Last)
            : end.Unacknowledged;

    // The connection the client closed after ending its session (CloseForNewSessionAsync): its Close reply starts a new one.
    private ClientWebSocket? _closedForNewSession;

    /// <summary>Tests: awaited by the queue's writer after it ended the session, before it tells the server.</summary>
    internal Func<Task>? AfterWriterEndedSessionForTest { get; set; }

    /// <summary>Session mode: numbers a dequeued message, keeps it for replay and writes it as a Data frame.</summary>
    /// <returns>False when the session ended under it (the message stays in flight for the next session).</returns>
    /// <remarks>
    /// The message is numbered and written under one hold of the send lock, as a direct send's is: frames must go on the
    /// wire in sequence order. Numbered outside it, a direct send that had found the queue empty just before this writer
    /// started could take the next number and write it first, and the server closes for the gap (1002). The wait for room
    /// happens before the lock: the acknowledgements that make room may need it (a due Ack frame, a resume).
    /// </remarks>
    private async Task<bool> SendSessionMessageAsync(ClientWebSocket socket, ClientSession session, OutgoingMessage message, CancellationToken cancellationToken)
    {
        var isText = message.Type == WebSocketMessageType.Text;
        var acknowledged = message.TakeAcknowledged();
        ReplayAppendResult appended;
        var locked = false;
        try
        {
            if (message.Data.Length > session.MaxFrameBytes - NextDataHeaderLength(session))
            {
                // Queued before this session said its limit: sending it would close the connection with 1009.
                throw new ArgumentException($"a queued message of {message.Data.Length} bytes is larger than the server accepts ({session.MaxFrameBytes}-byte frames)");
            }

            while (true)
            {
                // In ReplayBufferFullMode.Fail as well: the sender was told at its call if the buffer was full then; a
                // message accepted into the queue waits for room rather than being dropped where nobody learns of it.
                var room = session.Replay.WaitForRoomAsync(message.Data.Length, cancellationToken, alsoInFailMode: true);
                if (!room.IsCompleted)
                {
                    WakeLoop(); // it waits for the server's acks: the receive side reads them even if the application does not
                }

                await room.ConfigureAwait(false);
                await SendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
                locked = true;
                if (session.Replay.TryAppend(message.Data.Span, isText, acknowledged is not null, alsoWaitInFailMode: true, out appended))
                {
                    break;
                }

                SendLock.Release(); // the room went again before the lock was ours: wait for it anew
                locked = false;
            }
        }
        catch (Exception e) when (e is ReplayBufferFullException or ArgumentException)
        {
            // Never written, and never retried: a message that cannot go must not block the queue behind it.
            if (locked)
            {
                SendLock.Release();
            }

            OnDropped(DropReason.TooLarge, e.Message);
            _inFlight = null;
            acknowledged?.TrySetResult(false);
            message.Release();
            return true;
        }
        catch
        {
            if (locked)
            {
                SendLock.Release();
            }

            message.Acknowledged = acknowledged;
            throw;
        }

        if (appended.Status == ReplayAppendStatus.SessionEnded)
        {
            SendLock.Release();
            message.Acknowledged = acknowledged;
            var end = session.Replay.End!.Value;
            EndSession(session, end.Reason, out var first);
            if (AfterWriterEndedSessionForTest is { } pause)
            {
                await pause().ConfigureAwait(false);
            }

            if (first)
            {
                // The buffer ended itself (full, in mode EndSession): the server learns it from us. Otherwise the receive
                // loop ended the session (the server's SessionLost) and reported it.
                await TrySendAsync(socket, w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(end.Reason, session.Inbound.LastDelivered, end.Unacknowledged))).ConfigureAwait(false);
                ReportSessionLost(new SessionLostEventArgs(session.Id, end.Reason, false, false, 0, SequenceRange.Empty, end.Unacknowledged, _time.GetUtcNow()));
            }

            await CloseForNewSessionAsync(socket).ConfigureAwait(false);
            return false;
        }

        if (acknowledged is not null)
        {
            _ = LinkAcknowledgementAsync(appended.Acknowledged!, acknowledged);
        }

        // From here on the replay buffer owns the message: a failed write is resent by the resume.
        _inFlight = null;
        try
        {
            await WriteDataFrameLockedAsync(socket, session, appended.Sequence, isText, message.Data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            SendLock.Release();
            message.Release();
        }

        return true;
    }

    /// <summary>
    /// The client ended its session on this connection and told the server (SessionLost): ends the connection with a Close
    /// frame, which the server reads after that SessionLost (unless it is still waiting for room for frames before them),
    /// and lets the loop connect again for a new session when the server's Close comes back (see
    /// <see cref="OnCloseFrameAsync"/>). Not an abort: aborting a socket while a receive is pending resets the connection,
    /// and the reset could discard the SessionLost before the server read it; the server then kept the session for a
    /// resume that never came, and a send waiting for the client's acknowledgement waited with it. A server that does not
    /// answer within <see cref="LifelineClientOptions.CloseTimeout"/> is aborted.
    /// </summary>
    private async Task CloseForNewSessionAsync(ClientWebSocket socket)
    {
        Volatile.Write(ref _closedForNewSession, socket);
        try
        {
            using var timeout = new CancellationTokenSource(_options.CloseTimeout, _time);
            await SendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
            try
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "session ended; starting a new one", timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                SendLock.Release();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            if (socket.State is not (WebSocketState.CloseReceived or WebSocketState.Closed))
            {
                socket.Abort(); // the connection is failing anyway: the loop ends with it
            }

            return; // or the server closed first (the loop answered it): nothing to abort
        }

        _ = AbortUnlessClosedAsync(socket);
    }

    /// <summary>Aborts <paramref name="socket"/> if the server has not answered its Close within the close timeout.</summary>
    private async Task AbortUnlessClosedAsync(ClientWebSocket socket)
    {
        await Task.Delay(_options.CloseTimeout, _time).ConfigureAwait(false);
        if (socket.State == WebSocketState.CloseSent) // a disposed socket reads Closed, and is left alone
        {
            socket.Abort();
        }
    }

    private static async Task LinkAcknowledgementAsync(Task<bool> source, TaskCompletionSource<bool> target) =>
        target.TrySetResult(await source.ConfigureAwait(false));

    private async Task TrySendAsync(ClientWebSocket socket, Action<IBufferWriter<byte>> write)
    {
        try
        {
            using var timeout = new CancellationTokenSource(_options.CloseTimeout, _time);
            await SendControlFrameAsync(socket, write, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // The socket is going anyway.
        }
    }

    /// <summary>Writes a Data frame under the send lock (a resume's replay).</summary>
    private async Task SendDataFrameAsync(ClientWebSocket socket, ClientSession session, long sequence, bool isText, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        await SendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteDataFrameLockedAsync(socket, session, sequence, isText, payload, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            SendLock.Release();
        }
    }

    /// <summary>Writes a Data frame; the caller holds the send lock.</summary>
    private async Task WriteDataFrameLockedAsync(ClientWebSocket socket, ClientSession session, long sequence, bool isText, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(SessionFrameWriter.MaxDataHeaderLength + payload.Length);
        try
        {
            // The ack is taken under the send lock, so acks on the wire never go backwards.
            SessionFrameWriter.TryWriteDataHeader(buffer, sequence, session.Inbound.TakeAck(), isText, out var header);
            payload.Span.CopyTo(buffer.AsSpan(header));
            await socket.SendAsync(buffer.AsMemory(0, header + payload.Length), WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        Interlocked.Increment(ref _sent);
    }

    private async Task SendControlFrameAsync(ClientWebSocket socket, Action<IBufferWriter<byte>> write, CancellationToken cancellationToken)
    {
        var writer = new ArrayBufferWriter<byte>(64);
        await SendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            write(writer);
            await socket.SendAsync(writer.WrittenMemory, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            SendLock.Release();
        }
    }

    private Task SendHelloAsync(ClientWebSocket socket, ClientSession? session, CancellationToken cancellationToken) =>
        SendControlFrameAsync(socket, w => SessionFrameWriter.WriteHello(w, session is null
            ? HelloFrame.NewSession()
            : HelloFrame.Resume(session.Id, session.Token, session.Inbound.TakeAck())), cancellationToken);

    /// <summary>
    /// The application took a message read ahead: a message held past the buffer's bounds may be acknowledged now
    /// (see <see cref="InboundSequencer.Accept(long, int, bool, out AckTrigger)"/>). Called holding the receive lock.
    /// </summary>
    private void OnReadAheadMessageTaken(int payloadLength)
    {
        if (Volatile.Read(ref _session) is { } session && session.Inbound.ReleaseHeld(payloadLength) != AckTrigger.None)
        {
            SignalAck();
        }
    }

    private void SignalAck() => Volatile.Read(ref _sessionMode!.AckWake)?.Set();

    /// <summary>The Ack frame for what was delivered so far, taken as sent. Call holding the send lock (it reuses one buffer).</summary>
    private ReadOnlyMemory<byte> WriteAckFrame(ClientSession session)
    {
        var writer = _sessionMode!.AckFrame ??= new ArrayBufferWriter<byte>(16);
        writer.ResetWrittenCount();
        SessionFrameWriter.WriteAck(writer, session.Inbound.TakeAck());
        return writer.WrittenMemory;
    }

    /// <summary>
    /// An ack due by count or bytes goes out from the reader that found it due when nothing else is sending, so a
    /// steady flow wakes no thread for its acks. Otherwise (or when the write has to wait) the ack loop's way applies.
    /// </summary>
    private void SendDueAck(ClientWebSocket socket, ClientSession session)
    {
        if (!SendLock.Wait(0, CancellationToken.None))
        {
            SignalAck();
            return;
        }

        ValueTask sending;
        try
        {
            sending = socket.SendAsync(WriteAckFrame(session), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            SendLock.Release(); // the connection is over
            return;
        }

        if (!sending.IsCompleted)
        {
            _ = ReleaseSendLockAfterAsync(sending);
            return;
        }

        try
        {
            sending.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The connection is over; the next session's Hello states what was delivered.
        }
        finally
        {
            SendLock.Release();
        }
    }

    private async Task ReleaseSendLockAfterAsync(ValueTask sending)
    {
        try
        {
            await sending.ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The connection is over.
        }
        finally
        {
            SendLock.Release();
        }
    }

    /// <summary>Sends an Ack frame whenever one is due and no Data frame carried it (count, bytes or delay).</summary>
    private async Task AckLoopAsync(ClientWebSocket socket, ClientSession session, AckWake wake, CancellationToken cancellationToken)
    {
        try
        {
            var justAcknowledged = false;
            while (true)
            {
                var now = wake.Now;
                var dueIn = session.Inbound.NextAckLoopWait(justAcknowledged);
                justAcknowledged = false;
                if (dueIn is null)
                {
                    await wake.WaitAsync(Timeout.InfiniteTimeSpan, now).ConfigureAwait(false);
                }
                else if (dueIn > TimeSpan.Zero)
                {
                    await wake.WaitAsync(dueIn.Value, now).ConfigureAwait(false);
                }

                if (session.Inbound.IsAckDue)
                {
                    justAcknowledged = true;
                    await SendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
                    try
                    {
                        await socket.SendAsync(WriteAckFrame(session), WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        SendLock.Release();
                    }
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection is over.
        }
        finally
        {
            wake.Dispose();
        }
    }

    /// <summary>Reads one whole message; returns the close record instead when the connection closes or a message is too big.</summary>
    private async Task<(WebSocketMessageType Type, CloseRecord? Close)> ReceiveWholeAsync(ClientWebSocket socket, ArrayBufferWriter<byte> buffer, CancellationToken cancellationToken)
    {
        buffer.ResetWrittenCount();
        ValueWebSocketReceiveResult result;
        do
        {
            // The handshake's frames are a few dozen bytes: read them in 256-byte steps (the buffer grows for a larger
            // one). Asking it for 16 KiB allocated that much for every handshake, and a reconnect storm of thousands
            // of clients in one process allocated it thousands of times at once.
            result = await socket.ReceiveAsync(buffer.GetMemory(256), cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (result.MessageType, await OnCloseFrameAsync(socket).ConfigureAwait(false));
            }

            buffer.Advance(result.Count);
            if (buffer.WrittenCount > _options.MaxMessageSize)
            {
                return (result.MessageType, await CloseTooBigAsync(socket).ConfigureAwait(false));
            }
        }
        while (!result.EndOfMessage);
        return (result.MessageType, null);
    }

    /// <summary>Closes with <paramref name="code"/> because of something the server did; logs it and returns the record.</summary>
    private async Task<CloseRecord> CloseWithAsync(ClientWebSocket socket, CloseCode code, string reason, string cause)
    {
        Log.SessionProtocolError(_logger, code, cause);
        try
        {
            using var timeout = new CancellationTokenSource(_options.CloseTimeout, _time);
            await SendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
            try
            {
                await socket.CloseAsync(code.ToWebSocketCloseStatus(), reason, timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                SendLock.Release();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            socket.Abort();
        }

        return Ended(code, CloseInitiator.Client, null, CloseCause.ProtocolViolation, cause, reason);
    }
}
