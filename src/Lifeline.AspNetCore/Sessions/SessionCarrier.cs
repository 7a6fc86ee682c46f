using System.Buffers;
using System.Globalization;
using System.Net.WebSockets;
using Lifeline.CloseCodes;
using Lifeline.Protocol;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.AspNetCore;

/// <summary>
/// One socket carrying (at most) one session at a time: runs the <c>lifeline.v1</c> handshake, turns frames into
/// inbox messages and acks, and sends Data/Ack frames through the connection's bounded outbound buffer.
/// </summary>
internal sealed class SessionCarrier(LifelineConnection connection, LifelineSessionManager manager, Func<LifelineSession, CancellationToken, Task> handler)
{
    private AckWake? _ackWake; // the ack loop's of the session on this socket; made before deliveries can signal it
    private long _lastHeartbeatAnswer = long.MinValue / 2; // Environment.TickCount64 of the last answer (the carrier's loop only)

    public LifelineConnection Connection { get; } = connection;

    // A resume's replay fills the outbound buffer by design (it waits for room: the client catches up at its own pace).
    // Until the writer is past the replay's last frame, a full buffer is that catch-up, not a slow consumer. long.MaxValue
    // while the replay runs; 0 (never catching up) for a socket that started its session.
    private long _catchUpMark;

    /// <summary>Whether this socket still works through a resume's replay (see <see cref="BeginCatchUp"/>).</summary>
    public bool IsCatchingUp => !Connection.HasWrittenPast(Volatile.Read(ref _catchUpMark));

    /// <summary>A resume starts its replay on this socket: a full outbound buffer is the catch-up until <see cref="EndCatchUp"/>'s mark.</summary>
    public void BeginCatchUp() => Volatile.Write(ref _catchUpMark, long.MaxValue);

    /// <summary>The replay is queued: the catch-up lasts until the writer has taken its last frame.</summary>
    public void EndCatchUp() => Volatile.Write(ref _catchUpMark, Connection.QueuedMark);

    /// <summary>Runs until the socket ends (or is closed for bad input).</summary>
    public async Task RunAsync()
    {
        LifelineSession? session = null;
        Task acker = Task.CompletedTask;
        var stopAcks = CancellationTokenSource.CreateLinkedTokenSource(Connection.Closing); // one per session on this socket
        var afterLost = false;
        using var handshake = new CancellationTokenSource(manager.Options.HandshakeTimeout, manager.Time); // bounds each wait for a Hello
        var helloBounded = true; // the handshake timer runs for the Hello now awaited
        try
        {
            while (true)
            {
                LifelineMessage? message;
                try
                {
                    // Read here, not in a method of its own: one asynchronous step fewer per message.
                    while (!Connection.Messages.TryRead(out message))
                    {
                        // A Hello is due first, and again once a session on this socket is lost and the client told
                        // (5.7): each such wait is bounded by HandshakeTimeout, from when it began.
                        var helloDue = session is null || session is { IsEnded: true, ClientToldLost: true };
                        if (helloDue && !helloBounded)
                        {
                            handshake.CancelAfter(manager.Options.HandshakeTimeout);
                            helloBounded = true;
                        }

                        // While a session is on, its end also wakes this wait: a loss the client is told of starts the bound
                        // above even when the client sends nothing more.
                        var wake = helloDue ? handshake.Token
                            : session!.Ending.IsCancellationRequested ? CancellationToken.None : session.Ending;
                        try
                        {
                            if (!await Connection.Messages.WaitToReadAsync(wake).ConfigureAwait(false))
                            {
                                break; // the socket ended: no message
                            }
                        }
                        catch (OperationCanceledException) when (!helloDue && !handshake.IsCancellationRequested)
                        {
                            // The session ended: look again at what is due.
                        }
                    }
                }
                catch (OperationCanceledException) when (handshake.IsCancellationRequested)
                {
                    await FailAsync(SessionProtocol.HandshakeTimeout, "no Hello in time",
                        $"no Hello within {manager.Options.HandshakeTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s").ConfigureAwait(false);
                    return;
                }

                if (message is null)
                {
                    return; // the socket ended
                }

                if (session is { IsEnded: true, ClientToldLost: true })
                {
                    // The server ended the session and told the client (5.7): what the client sent before it read that
                    // is dropped, and a Hello starts its next session on this socket.
                    await LeaveSessionAsync().ConfigureAwait(false);
                }

                if (message.Type == WebSocketMessageType.Text)
                {
                    await FailAsync(CloseCode.UnsupportedData, "session frames are binary", "a text message on a session connection").ConfigureAwait(false);
                    return;
                }

                if (SessionFrameReader.TryReadData(message.Data.Span, int.MaxValue, out var sequence, out var ack, out var headerLength, out var isText))
                {
                    // The per-message path: a Data frame, decoded into scalars (the general header is large, and this
                    // loop keeps its locals across awaits).
                    if (session is null)
                    {
                        if (afterLost)
                        {
                            continue; // in flight from the lost session (5.7)
                        }

                        await FailAsync(CloseCode.ProtocolError, "first frame not Hello", $"expected Hello, got {SessionFrameType.Data}").ConfigureAwait(false);
                        return;
                    }

                    if (!Acknowledge(session, ack))
                    {
                        await FailAsync(CloseCode.ProtocolError, "ack beyond sent", "the client acknowledged a message never sent").ConfigureAwait(false);
                        return;
                    }

                    // As the runtime checks a plain text message: the handler, and plain sockets a relay passes it to (whose
                    // runtime would fail with 1007), only ever get UTF-8 as text.
                    if (isText && !System.Text.Unicode.Utf8.IsValid(message.Data.Span[headerLength..]))
                    {
                        await FailAsync(CloseCode.InvalidPayloadData, "invalid UTF-8 in text", "a text Data frame whose payload is not UTF-8").ConfigureAwait(false);
                        return;
                    }

                    var delivery = await EnqueueAsync(session, sequence, isText, headerLength, message).ConfigureAwait(false);
                    if (delivery == Delivery.Delivered)
                    {
                        session.Inbox.HandOver(); // the turn is given back: a handler waiting for the message runs on this thread
                    }

                    switch (delivery)
                    {
                        case Delivery.Gap:
                            await FailAsync(CloseCode.ProtocolError, "sequence gap",
                                $"sequence gap: got {sequence.ToString(CultureInfo.InvariantCulture)}, expected {(session.LastEnqueued + 1).ToString(CultureInfo.InvariantCulture)}").ConfigureAwait(false);
                            return;
                        case Delivery.NotTaken when session is { IsEnded: true, ClientToldLost: true }:
                            await LeaveSessionAsync().ConfigureAwait(false); // the client was told: it may go on with a Hello (5.7)
                            continue;
                        case Delivery.NotTaken when session is { IsEnded: false, IsFrozen: false } && session.Carrier != this:
                            // A resume took the session to another socket, and this one, still open, sent on: it hears
                            // 4001 now (back off, resume), not the 1000 of a connection's end, which stops a client.
                            await Connection.CloseAsync(SessionProtocol.SessionTakenOver, "session resumed elsewhere", CancellationToken.None).ConfigureAwait(false);
                            return;
                        case Delivery.NotTaken:
                            return; // the session ended, was frozen or went to another socket; the client resends what was not delivered
                    }

                    continue;
                }

                var error = SessionFrameReader.TryRead(new ReadOnlySequence<byte>(message.Data), int.MaxValue, out var header, out _);
                if (error != SessionFrameError.None)
                {
                    await FailAsync(error.ToCloseCode(), error.Describe(), $"malformed frame: {error.Describe()}").ConfigureAwait(false);
                    return;
                }

                if (session is null)
                {
                    if (header.Type != SessionFrameType.Hello)
                    {
                        if (afterLost && header.Type is SessionFrameType.Ack or SessionFrameType.SessionLost)
                        {
                            // In flight from the lost session (5.7): an Ack, or the client's own SessionLost when both sides
                            // ended the session at once. The session is over either way; its Hello comes next.
                            continue;
                        }

                        await FailAsync(CloseCode.ProtocolError, "first frame not Hello", $"expected Hello, got {header.Type}").ConfigureAwait(false);
                        return;
                    }

                    handshake.CancelAfter(Timeout.InfiniteTimeSpan);
                    helloBounded = false;
                    var outcome = await manager.OpenAsync(this, header.Hello, handler).ConfigureAwait(false);
                    switch (outcome.Kind)
                    {
                        case OpenKind.Opened:
                            session = outcome.Session!;
                            var wake = new AckWake(manager.Time, stopAcks.Token);
                            Volatile.Write(ref _ackWake, wake);
                            session.Inbox.Delivered += SignalAck;
                            acker = AckLoopAsync(session, wake);
                            afterLost = false;
                            continue;
                        case OpenKind.Refused:
                            SessionLog.Refused(manager.Logger, Connection.Id, outcome.Detail!);
                            await Connection.CloseAsync(CloseCode.PolicyViolation, SessionProtocol.RefusedReason, CancellationToken.None).ConfigureAwait(false);
                            return;
                        case OpenKind.Unavailable:
                            SessionLog.StoreUnavailableOnOpen(manager.Logger, Connection.Id, outcome.Detail!);
                            await Connection.CloseAsync(CloseCode.TryAgainLater, RetryHint.AppendTo("session store unavailable", manager.TryAgainLaterHint), CancellationToken.None).ConfigureAwait(false);
                            return;
                        case OpenKind.Full:
                            await manager.RefuseFullAsync(Connection).ConfigureAwait(false);
                            return;
                        case OpenKind.Lost:
                            afterLost = true;
                            continue;
                        case OpenKind.Closing:
                            return; // its close is under way
                        default:
                            await FailAsync(CloseCode.ProtocolError, "last received beyond sent", outcome.Detail!).ConfigureAwait(false);
                            return;
                    }
                }

                switch (header.Type)
                {
                    case SessionFrameType.Ack:
                        var repeated = header.Ack <= session.Replay.LastAcknowledgedHint;
                        if (!Acknowledge(session, header.Ack))
                        {
                            await FailAsync(CloseCode.ProtocolError, "ack beyond sent", "the client acknowledged a message never sent").ConfigureAwait(false);
                            return;
                        }

                        if (repeated)
                        {
                            AnswerHeartbeat(session);
                        }

                        break;
                    case SessionFrameType.SessionLost:
                        // The client's "last received" says which of our messages reached its application (5.7): those count
                        // as acknowledged, so a send waiting for its ack learns it arrived. A number beyond what was sent is
                        // not believed; the session ends either way.
                        Acknowledge(session, header.SessionLost.LastReceived);
                        manager.Lose(session, header.SessionLost.Reason, tellClient: false);
                        await LeaveSessionAsync().ConfigureAwait(false);
                        break;
                    default:
                        await FailAsync(CloseCode.ProtocolError, "unexpected frame", $"{header.Type} on an established session").ConfigureAwait(false);
                        return;
                }
            }
        }
        finally
        {
            await stopAcks.CancelAsync().ConfigureAwait(false);
            await acker.ConfigureAwait(false);
            stopAcks.Dispose();
            if (session is not null)
            {
                session.Inbox.Delivered -= SignalAck;
                manager.Detached(session, this);
            }
        }

        // The session on this socket is over (lost, and the client knows): stop its ack loop and wait for the next Hello.
        async Task LeaveSessionAsync()
        {
            await stopAcks.CancelAsync().ConfigureAwait(false);
            await acker.ConfigureAwait(false);
            session!.Inbox.Delivered -= SignalAck;
            manager.Detached(session, this);
            session = null;
            afterLost = true;

            // The next session on this socket (5.7) gets an ack loop of its own, not a cancelled token.
            stopAcks.Dispose();
            stopAcks = CancellationTokenSource.CreateLinkedTokenSource(Connection.Closing);
            acker = Task.CompletedTask;
        }
    }

    /// <summary>Applies the client's cumulative ack (on a Data or Ack frame); false when it acknowledges a message never sent.</summary>
    private static bool Acknowledge(LifelineSession session, long ack)
    {
        if (session.Replay.Acknowledge(ack).Status == ReplayAckStatus.BeyondSent)
        {
            return false;
        }

        session.Journal?.ClientAcknowledged(ack);
        return true;
    }

    private enum Delivery
    {
        Delivered,
        Duplicate,
        Gap,
        NotTaken,
    }

    /// <summary>
    /// Hands a client Data frame's payload to the session's inbox, in its turn (see <see cref="LifelineSession.InboundTurn"/>);
    /// once the turn is given back, the caller lets a handler waiting for it run on its thread (<see cref="SessionInbox.HandOver"/>).
    /// </summary>
    private async ValueTask<Delivery> EnqueueAsync(LifelineSession session, long sequence, bool isText, int headerLength, LifelineMessage message)
    {
        if (sequence <= session.LastEnqueued)
        {
            // Without the turn: the frames a client resends after a resume are mostly duplicates, and the Acks behind
            // them must be read even while the old socket's carrier holds the turn, waiting for room in the inbox.
            return Delivery.Duplicate;
        }

        if (Connection.Closing.IsCancellationRequested)
        {
            return Delivery.NotTaken; // this socket is closing
        }

        if (!session.InboundTurn.Wait(0, CancellationToken.None)) // the usual case: the turn is free, and taken without an asynchronous wait
        {
            try
            {
                await session.InboundTurn.WaitAsync(Connection.Closing).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return Delivery.NotTaken; // this socket is closing
            }
        }

        try
        {
            if (session.Carrier != this)
            {
                return Delivery.NotTaken; // a resume took the session to another socket
            }

            if (sequence <= session.LastEnqueued)
            {
                return Delivery.Duplicate; // normal after a resume
            }

            if (sequence != session.LastEnqueued + 1)
            {
                return Delivery.Gap;
            }

            session.LastEnqueued = sequence;
            // The connection's message becomes the payload's, in place: no second object per message, and the connection's
            // copy of the bytes is the message's own, so no second copy either.
            message.UnwrapSessionPayload(isText ? WebSocketMessageType.Text : WebSocketMessageType.Binary, headerLength);
            await session.Inbox.WriteAsync(sequence, message, session.Ending).ConfigureAwait(false);
            return Delivery.Delivered;
        }
        catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
        {
            return Delivery.NotTaken;
        }
        finally
        {
            session.InboundTurn.Release();
        }
    }

    /// <summary>
    /// Writes a Data frame (the session's send lock is held by the caller). <paramref name="groupDeadline"/>: a group
    /// send's deadline (<see cref="LifelineServerOptions.SendTimeout"/> from its start), for a socket still catching up
    /// after a resume; past it the socket is closed as a slow consumer (4008), as a full one is at once otherwise.
    /// </summary>
    public async ValueTask SendDataAsync(LifelineSession session, long sequence, bool isText, ReadOnlyMemory<byte> payload, long? ack = null,
        CancellationToken groupDeadline = default)
    {
        var buffer = RentDataFrame(sequence, ack ?? session.AckToSend, isText, payload.Span, out var length);
        try
        {
            await Connection.SendAsync(buffer.AsMemory(0, length), WebSocketMessageType.Binary, groupDeadline).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // The socket is closing: the message stays in the replay buffer for the resume.
        }
        catch (OperationCanceledException) when (groupDeadline.IsCancellationRequested)
        {
            Connection.CloseSlowConsumer("a group send waited its deadline for room on a socket catching up after a resume");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A group send's or broadcast's Data frame (the session's send lock is held by the caller): queued on the socket
    /// without waiting, as a plain broadcast is. A socket whose outbound buffer is full is closed as a slow consumer
    /// (4008): one member that stopped reading must not hold up the sender, and so every other member. The message is in
    /// the replay buffer already and reaches the member when it resumes. (A socket catching up after a resume takes
    /// <see cref="SendDataAsync"/> with the group send's deadline instead: its buffer is full by design.)
    /// </summary>
    public void QueueDataOrCloseSlow(LifelineSession session, long sequence, bool isText, ReadOnlyMemory<byte> payload)
    {
        var buffer = RentDataFrame(sequence, session.AckToSend, isText, payload.Span, out var length);
        try
        {
            Connection.TryQueueBroadcast(buffer.AsMemory(0, length), WebSocketMessageType.Binary); // copies the frame
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A Data frame, header then payload, in a buffer from <see cref="ArrayPool{T}.Shared"/> (the caller returns it).</summary>
    private static byte[] RentDataFrame(long sequence, long ack, bool isText, ReadOnlySpan<byte> payload, out int length)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(SessionFrameWriter.MaxDataHeaderLength + payload.Length);
        SessionFrameWriter.TryWriteDataHeader(buffer, sequence, ack, isText, out var header);
        payload.CopyTo(buffer.AsSpan(header));
        length = header + payload.Length;
        return buffer;
    }

    /// <summary>Writes a control frame; false when the socket is closing.</summary>
    public async ValueTask<bool> SendControlAsync(Action<IBufferWriter<byte>> write)
    {
        var writer = new ArrayBufferWriter<byte>(128);
        write(writer);
        try
        {
            await Connection.SendAsync(writer.WrittenMemory, WebSocketMessageType.Binary, CancellationToken.None).ConfigureAwait(false);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private async Task FailAsync(CloseCode code, string reason, string cause)
    {
        SessionLog.ProtocolError(manager.Logger, Connection.Id, code.Value, cause);
        await Connection.CloseAsync(code, reason, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// An Ack frame that acknowledges nothing new is a heartbeat (the browser client sends one every 15 s: it can neither
    /// send pings nor see ours). It is answered with an Ack frame, at most once a second, so that such a client learns
    /// the link is alive while its messages wait for a handler still busy with an earlier one (docs/protocol.md 5.4).
    /// </summary>
    private void AnswerHeartbeat(LifelineSession session)
    {
        var now = Environment.TickCount64;
        if (now - _lastHeartbeatAnswer < 1000)
        {
            return;
        }

        _lastHeartbeatAnswer = now;
        if (session.Journal is { } journal)
        {
            journal.RequestAck(); // its writer sends what the store holds as delivered
        }
        else
        {
            _ = SendControlAsync(w => SessionFrameWriter.WriteAck(w, session.Inbound.TakeAck())).AsTask();
        }
    }

    private void SignalAck() => Volatile.Read(ref _ackWake)?.Set();

    private async Task AckLoopAsync(LifelineSession session, AckWake wake)
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

                if (session.Carrier != this)
                {
                    return; // a resume took the session to another socket, whose carrier sends the acks now
                }

                if (!session.Inbound.IsAckDue)
                {
                    continue;
                }

                justAcknowledged = true;
                if (session.Journal is { } journal)
                {
                    // With a shared store the writer records the delivery first, then sends the Ack.
                    session.Inbound.TakeAck();
                    journal.RequestAck();
                }
                else if (!await SendControlAsync(w => SessionFrameWriter.WriteAck(w, session.Inbound.TakeAck())).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The socket or the session is over.
        }
        finally
        {
            wake.Dispose();
        }
    }
}
