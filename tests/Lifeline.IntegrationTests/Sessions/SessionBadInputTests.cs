using System.Buffers;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Protocol;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>Bad input on a session endpoint gets a clear close code; other sessions carry on.</summary>
[Collection(SerialCollection.Name)]
public sealed class SessionBadInputTests
{
    internal static async Task<ClientWebSocket> ConnectAsync(Uri uri)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(SessionProtocol.SubProtocol);
        await socket.ConnectAsync(uri, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(SessionProtocol.SubProtocol, socket.SubProtocol);
        return socket;
    }

    internal static byte[] Frame(Action<IBufferWriter<byte>> write)
    {
        var writer = new ArrayBufferWriter<byte>();
        write(writer);
        return writer.WrittenSpan.ToArray();
    }

    internal static Task SendAsync(ClientWebSocket socket, byte[] frame, WebSocketMessageType type = WebSocketMessageType.Binary) =>
        socket.SendAsync(frame, type, true, CancellationToken.None);

    /// <summary>Reads until the server closes; returns the close code and the frames seen before it.</summary>
    private static async Task<(int? Code, string? Reason, List<byte[]> Frames)> ReadUntilCloseAsync(ClientWebSocket socket)
    {
        var frames = new List<byte[]>();
        var buffer = new byte[64 * 1024];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return ((int?)socket.CloseStatus, socket.CloseStatusDescription, frames);
            }

            frames.Add(buffer.AsSpan(0, result.Count).ToArray());
        }
    }

    internal static async Task<(SessionId Id, ResumeToken Token)> HelloAsync(ClientWebSocket socket)
    {
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var buffer = new byte[1024];
        var result = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, result.Count)), int.MaxValue, out var header, out _));
        var welcome = header.Welcome;
        return (welcome.SessionId, welcome.ResumeToken);
    }

    [Fact]
    public async Task TextDataThatIsNotUtf8_Closes1007_AndOtherSessionsCarryOn()
    {
        // A text Data frame is a text message: the handler (or a group relay to plain sockets, whose runtime would fail
        // the receiving connection with 1007) must never get text that is not UTF-8. Before, it was handed on as text.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), Path.Combine(Path.GetTempPath(), $"lifeline-utf8-{Guid.NewGuid():N}.bin"));
        await using var other = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/echo")));
        await other.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        using var socket = await ConnectAsync(host.Uri("/echo"));
        await HelloAsync(socket);
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteData(w, 1, 0, isText: true, [0xC3, 0x28])));
        var (code, reason, frames) = await ReadUntilCloseAsync(socket);
        Assert.Equal(1007, code);
        Assert.Contains("UTF-8", reason, StringComparison.Ordinal);
        Assert.Empty(frames); // nothing echoed

        await other.SendTextAsync("still here");
        Assert.Equal("still here", (await Wait.ReadAsync(other.Messages, TimeSpan.FromSeconds(30))).Text);
    }

    [Fact]
    public async Task RegistryBroadcast_ReachesPlainSocketsButNotSessionSockets()
    {
        // The registry's sends write raw messages. On a lifeline.v1 socket a raw text message made its client close with
        // 1003 (a binary one starting 06 would even be read as a Data frame); only session frames may go there.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), Path.Combine(Path.GetTempPath(), $"lifeline-registry-{Guid.NewGuid():N}.bin"));
        using var session = await ConnectAsync(host.Uri("/echo"));
        await HelloAsync(session);
        using var plain = new ClientWebSocket(); // no lifeline.v1: a plain-mode session over its socket
        await plain.ConnectAsync(host.Uri("/echo"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await Wait.UntilAsync(() => host.Server.Registry.Count == 2, TimeSpan.FromSeconds(15), "both connections");

        Assert.Equal(1, await host.Server.Registry.SendToAllAsync("raw notice"));
        var sessionConnection = host.Server.Registry.Connections.Single(c => c.SubProtocol == SessionProtocol.SubProtocol);
        Assert.Throws<InvalidOperationException>(() => sessionConnection.JoinGroup("room"));
        await host.Sessions.SendToAllAsync("numbered notice"u8.ToArray(), WebSocketMessageType.Text);

        var buffer = new byte[1024];
        var received = await plain.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("raw notice", System.Text.Encoding.UTF8.GetString(buffer, 0, received.Count));
        received = await session.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(WebSocketMessageType.Binary, received.MessageType); // the first frame after the Welcome is the session's Data 1
        Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, received.Count)), int.MaxValue, out var header, out var payload));
        Assert.Equal(SessionFrameType.Data, header.Type);
        Assert.True(header.IsText);
        Assert.Equal(1, header.Sequence);
        Assert.Equal("numbered notice", System.Text.Encoding.UTF8.GetString(payload.ToArray()));
    }

    [Fact]
    public async Task HandlersTokenCallbackThrowsAtTheEnd_TheSessionStillEndsAndItsSocketCloses1000()
    {
        // Cancelling the handler's token ran the throwing callback and threw out of the session's end half-way: the
        // session stayed listed and its socket open for good.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), Path.Combine(Path.GetTempPath(), $"lifeline-callback-{Guid.NewGuid():N}.bin"));
        using var socket = await ConnectAsync(host.Uri("/throwing-callback"));
        await HelloAsync(socket);
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteData(w, 1, 0, isText: true, "end"u8)));

        var (code, _, _) = await ReadUntilCloseAsync(socket);
        Assert.Equal(1000, code);
        await Wait.UntilAsync(() => host.Sessions.Count == 0, TimeSpan.FromSeconds(15), "the session to be forgotten");
    }

    [Fact]
    public async Task HelloReadAfterTheDrainsCloseWasRequested_StartsNoSessionAndNoHandler()
    {
        // A socket admitted before the drain, whose Hello was still on its way when the drain asked for its 1012. Before,
        // the Hello created a session (its Welcome refused, unseen) and started its handler; the drain then saved it to
        // the drain file: a session no client holds a token for, and its handler's side effects, carried into the next
        // process.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-drainhello-{Guid.NewGuid():N}.bin"));
        using var socket = await ConnectAsync(host.Uri("/numbered"));
        await Wait.UntilAsync(() => host.Server.Registry.Count == 1, TimeSpan.FromSeconds(15), "the connection");
        var connection = host.Server.Registry.Connections.Single();

        var drain = host.Server.DrainAsync();
        await Wait.UntilAsync(() => connection.IsCloseRequested, TimeSpan.FromSeconds(15), "the drain's close");
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var (code, _, frames) = await ReadUntilCloseAsync(socket);
        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        await drain.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1012, code);
        Assert.Empty(frames); // no Welcome
        Assert.Equal(0, Volatile.Read(ref log.HandlerStarts));
        Assert.Equal(0, host.Sessions.Count);
    }

    [Fact]
    public async Task SessionLostThenNoHello_TheSocketIsClosedAfterTheHandshakeTimeout()
    {
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-lost-{Guid.NewGuid():N}.bin"),
            sessions: o => o.HandshakeTimeout = TimeSpan.FromSeconds(3));
        SessionId id;
        ResumeToken token;
        using (var first = await ConnectAsync(host.Uri("/ends-at-gate")))
        {
            (id, token) = await HelloAsync(first);
            log.Gate.SetResult(); // the handler returns: the session is over
            Assert.Equal(1000, (await ReadUntilCloseAsync(first)).Code);
        }

        // The resume is told SessionLost; the client then says nothing more (5.7 expects a Hello for a new session).
        using var second = await ConnectAsync(host.Uri("/ends-at-gate"));
        await SendAsync(second, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));
        var (code, reason, frames) = await ReadUntilCloseAsync(second);

        // Before, a socket past a SessionLost waited for its Hello without a bound: the connection and its slot were held
        // until the client went away.
        Assert.Equal(SessionProtocol.HandshakeTimeout.Value, code);
        Assert.Equal((byte)SessionFrameType.SessionLost, Assert.Single(frames)[0]);
        Assert.Contains("Hello", reason, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ServerEndsTheSessionAndTellsTheClient_ThenNoHello_TheSocketIsClosedAfterTheHandshakeTimeout()
    {
        // The server's replay buffer holds two messages and ends the session when full; the client never acknowledges
        // the pushes, so the third ends the session and the client is told (SessionLost, buffer full).
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), Path.Combine(Path.GetTempPath(), $"lifeline-told-{Guid.NewGuid():N}.bin"),
            sessions: o =>
            {
                o.Replay.MaxMessages = 2;
                o.Replay.FullMode = ReplayBufferFullMode.EndSession;
                o.HandshakeTimeout = TimeSpan.FromSeconds(3);
            });
        using var socket = await ConnectAsync(host.Uri("/push"));
        await HelloAsync(socket);

        var (code, _, frames) = await ReadUntilCloseAsync(socket);

        // Before, the socket then waited for the client's next frame without a bound: a silent client held it for good.
        Assert.Contains(frames, f => f[0] == (byte)SessionFrameType.SessionLost);
        Assert.Equal(SessionProtocol.HandshakeTimeout.Value, code);
    }

    [Fact]
    public async Task LeaveGroupDuringAJoinOfTheSameGroup_NoGroupSendReachesTheSessionAfterwards()
    {
        var log = new NumberedServerLog { ServerSendCount = 0 };
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-group-{Guid.NewGuid():N}.bin"));
        using var socket = await ConnectAsync(host.Uri("/numbered"));
        var (id, _) = await HelloAsync(socket);
        var session = host.Sessions.Find(id)!;

        // A LeaveGroup from another thread runs while the join has made its own record but not yet the table entry. It
        // waits for the join now (given a second to finish, it does not).
        Task? leave = null;
        session.JoinRecordedForTest = () =>
        {
            leave = Task.Run(() => session.LeaveGroup("g"));
            leave.Wait(TimeSpan.FromSeconds(1));
        };
        session.JoinGroup("g");
        session.JoinRecordedForTest = null;
        await leave!.WaitAsync(TimeSpan.FromSeconds(15));

        // Before, the leave removed the record and found no entry yet; the join then added one. The session said it was
        // in no group, group sends still reached it, and its end (which leaves the groups it lists) never removed it.
        Assert.Empty(session.Groups);
        Assert.Equal(0, await host.Sessions.SendToGroupAsync("g", "after the leave").WaitAsync(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task NewSessionOnTheSameSocketAfterTheClientsSessionLost_ServerStillAcknowledges()
    {
        // Protocol 5.7: after SessionLost a client may start the next session with a Hello on the same socket. That
        // session needs an ack loop of its own: a handler that only reads sends no Data for acks to ride on.
        var log = new NumberedServerLog { ServerSendCount = 0 };
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-lost-{Guid.NewGuid():N}.bin"));
        using var socket = await ConnectAsync(host.Uri("/numbered"));
        await HelloAsync(socket);
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(SessionLostReason.ReplayUnavailable, 0, SequenceRange.Empty))));
        await HelloAsync(socket);

        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteData(w, 1, 0, false, SessionTestHost.Number(1))));
        var buffer = new byte[1024];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, bound.Token); // the server's ack delay is 200 ms
            Assert.NotEqual(WebSocketMessageType.Close, result.MessageType);
            Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, result.Count)), int.MaxValue, out var header, out _));
            if (header.Type == SessionFrameType.Ack)
            {
                Assert.Equal(1, header.Ack);
                return;
            }
        }
    }

    /// <summary>A host whose replay buffer holds 3 messages in EndSession mode: /numbered sends more, unacknowledged, so the server ends the session.</summary>
    private static Task<SessionTestHost> StartHostThatEndsSessionsAsync(NumberedServerLog log) =>
        SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-lost-{Guid.NewGuid():N}.bin"),
            sessions: o =>
            {
                o.Replay.MaxMessages = 3;
                o.Replay.FullMode = ReplayBufferFullMode.EndSession;
            });

    /// <summary>Opens a session on /numbered, never acknowledging, and reads the server's SessionLost for it (its buffer full).</summary>
    private static async Task<(ClientWebSocket Socket, SessionId First)> OpenASessionTheServerEndsAsync(SessionTestHost host)
    {
        var socket = await ConnectAsync(host.Uri("/numbered"));
        var (first, _) = await HelloAsync(socket);
        var lost = await ReadUntilAsync(socket, SessionFrameType.SessionLost);
        Assert.Equal(SessionLostReason.BufferFull, lost.SessionLost.Reason);
        return (socket, first);
    }

    [Fact]
    public async Task ServerEndsTheSessionWhileConnected_ClientsNextHelloOnTheSameSocketStartsANewSession()
    {
        // Protocol 5.7 from the server's side: the server ends a session (here its replay buffer fills in EndSession
        // mode, as the client never acknowledges) and sends SessionLost; the client then sends Data it had in flight
        // and a new Hello on the same socket. The Data is dropped and the Hello answered with Welcome, not closed with 1002.
        var log = new NumberedServerLog { ServerSendCount = 10 };
        await using var host = await StartHostThatEndsSessionsAsync(log);
        var (socket, first) = await OpenASessionTheServerEndsAsync(host);
        using var _ = socket;

        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteData(w, 1, 0, false, SessionTestHost.Number(1)))); // in flight from the lost session
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var welcome = await ReadUntilAsync(socket, SessionFrameType.Welcome);
        Assert.NotEqual(first, welcome.Welcome.SessionId);
        await Wait.UntilAsync(() => Volatile.Read(ref log.HandlerStarts) == 2, what: "the handler of the second session");
        Assert.Empty(log.Received); // the Data frame of the lost session reached no handler
    }

    [Fact]
    public async Task BothSidesEndTheSessionAtOnce_TheClientsSessionLostIsIgnored_AndItsHelloStartsANewSession()
    {
        // The server ends the session (its replay buffer fills in EndSession mode) while the client ends it too (its own
        // SessionLost crosses the server's on the wire), then the client sends a new Hello. Before, the server answered
        // the crossed SessionLost with 1002 "first frame not Hello", a close the client does not reconnect after.
        var log = new NumberedServerLog { ServerSendCount = 10 };
        await using var host = await StartHostThatEndsSessionsAsync(log);
        var (socket, first) = await OpenASessionTheServerEndsAsync(host);
        using var _ = socket;

        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(SessionLostReason.BufferFull, 0, SequenceRange.Empty))));
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var welcome = await ReadUntilAsync(socket, SessionFrameType.Welcome);
        Assert.NotEqual(first, welcome.Welcome.SessionId);
    }

    [Fact]
    public async Task ResumeTakesTheSessionOver_TheOldSocketDeliversNothingMore()
    {
        // Socket A sends 1..10 while the handler is not reading: the session's inbox (2) fills, so A's carrier holds the
        // rest. Socket B then resumes the session. Once the handler reads, A's leftovers must not be delivered: only the
        // current socket delivers (two carriers at once could deliver a message twice or out of order). B resends.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-takeover-{Guid.NewGuid():N}.bin"),
            sessions: o => o.InboxCapacity = 2);
        var (a, b, resumed) = await ResumeBesideAWaitingSocketAsync(host, 10); // the handler read nothing yet: B resends from there
        using var disposeA = a;
        using var disposeB = b;

        log.Gate.SetResult();
        await Wait.UntilAsync(() => log.GatedPayloads.Count >= 3, what: "the handler to read 1..3");
        for (var i = (int)resumed.LastReceived + 1; i <= 10; i++)
        {
            await SendAsync(b, Frame(w => SessionFrameWriter.WriteData(w, i, 0, false, [(byte)i, (byte)'B'])));
        }

        await Wait.UntilAsync(() => log.GatedPayloads.Count >= 10, what: "the handler to read 1..10");
        var delivered = log.GatedPayloads.ToArray();
        Assert.Equal(Enumerable.Range(1, 10), delivered.Select(p => (int)p[0]));
        Assert.All(delivered.Skip(3), p => Assert.Equal((byte)'B', p[1]));
    }

    [Fact]
    public async Task ResumeWhileTheOldSocketWaitsForInboxRoom_ResentDuplicatesDoNotHoldUpTheFramesBehindThem()
    {
        // Socket A's carrier waits for room in the full inbox (the handler reads nothing yet), holding the inbound turn.
        // Socket B resumes and resends message 1, a duplicate, then a frame the server must act on (here an Ack beyond
        // what was sent, answered with 1002). A duplicate is dropped without the turn, so B's carrier reaches that frame.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-dup-{Guid.NewGuid():N}.bin"),
            sessions: o => o.InboxCapacity = 2);
        var (a, b, _) = await ResumeBesideAWaitingSocketAsync(host, 5);
        using var disposeA = a;
        using var disposeB = b;
        await SendAsync(b, Frame(w => SessionFrameWriter.WriteData(w, 1, 0, false, [1])));
        await SendAsync(b, Frame(w => SessionFrameWriter.WriteAck(w, 999)));

        var (code, _, _) = await ReadUntilCloseAsync(b);
        Assert.Equal(1002, code);
        log.Gate.SetResult();
    }

    [Fact]
    public async Task SessionLostWhileMessagesWaitUnread_TheReportCountsThemLost_AndTheHandlerNeverGetsThem()
    {
        // SessionLost tells the client what the server took (LastReceived); the client's application may send the rest
        // again. The unread messages used to stay readable, so a handler still acted on messages reported lost.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-lost-unread-{Guid.NewGuid():N}.bin"));
        using var socket = await ConnectAsync(host.Uri("/gated"));
        var (id, _) = await HelloAsync(socket);
        for (var i = 1; i <= 5; i++)
        {
            await SendAsync(socket, Frame(w => SessionFrameWriter.WriteData(w, i, 0, false, [(byte)i])));
        }

        await Wait.UntilAsync(() => host.Sessions.Find(id) is { LastEnqueued: 5 }, what: "1..5 in the inbox");
        var session = host.Sessions.Find(id)!;
        host.Sessions.Lose(session, SessionLostReason.BufferFull, tellClient: true);

        var lost = await ReadUntilAsync(socket, SessionFrameType.SessionLost);
        Assert.Equal(0, lost.SessionLost.LastReceived);
        Assert.False(session.Messages.TryRead(out _)); // what a handler that reads on (ignoring its token) would get
        await session.Messages.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        log.Gate.SetResult();
    }

    [Fact]
    public async Task SessionLostTwice_TheClientStillStartsItsNextSessionOnTheSameSocket()
    {
        // Two ends at once (concurrent group sends failing on one member, deadlines firing together): the second found
        // the session ended and took back the first one's mark that the client was told, so the client's new Hello on
        // that socket (protocol 5.7) was answered with 1002.
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-lost-twice-{Guid.NewGuid():N}.bin"));
        using var socket = await ConnectAsync(host.Uri("/gated"));
        var (id, _) = await HelloAsync(socket);
        var session = host.Sessions.Find(id)!;
        host.Sessions.Lose(session, SessionLostReason.BufferFull, tellClient: true);
        host.Sessions.Lose(session, SessionLostReason.BufferFull, tellClient: true);

        await ReadUntilAsync(socket, SessionFrameType.SessionLost);
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var welcome = await ReadUntilAsync(socket, SessionFrameType.Welcome);
        Assert.NotEqual(id, welcome.Welcome.SessionId);
        log.Gate.SetResult();
    }

    /// <summary>
    /// Socket A starts a session on /gated and sends 1..<paramref name="count"/> (payload: the number, then 'A') while the
    /// handler reads nothing: the inbox (2) fills and A's carrier waits with message 3. Socket B then resumes the session.
    /// </summary>
    private static async Task<(ClientWebSocket A, ClientWebSocket B, ResumedFrame Resumed)> ResumeBesideAWaitingSocketAsync(SessionTestHost host, int count)
    {
        var a = await ConnectAsync(host.Uri("/gated"));
        var (id, token) = await HelloAsync(a);
        for (var i = 1; i <= count; i++)
        {
            await SendAsync(a, Frame(w => SessionFrameWriter.WriteData(w, i, 0, false, [(byte)i, (byte)'A'])));
        }

        await Wait.UntilAsync(() => host.Sessions.Find(id) is { LastEnqueued: 3 }, what: "socket A to hand over 1..3 and wait with the rest");
        var b = await ConnectAsync(host.Uri("/gated"));
        await SendAsync(b, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));
        return (a, b, (await ReadUntilAsync(b, SessionFrameType.Resumed)).Resumed);
    }

    /// <summary>Reads frames until one of <paramref name="type"/>; fails on a Close.</summary>
    internal static async Task<SessionFrameHeader> ReadUntilAsync(ClientWebSocket socket, SessionFrameType type)
    {
        var buffer = new byte[64 * 1024];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, bound.Token);
            Assert.True(result.MessageType != WebSocketMessageType.Close, $"closed with {(int?)socket.CloseStatus} {socket.CloseStatusDescription} before {type}");
            Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, result.Count)), int.MaxValue, out var header, out _));
            if (header.Type == type)
            {
                return header;
            }
        }
    }

    public static TheoryData<string, int> Cases => new()
    {
        { "garbage-before-hello", 1002 },
        { "text-message", 1003 },
        { "unknown-type", 1002 },
        { "sequence-gap", 1002 },
        { "ack-beyond-sent", 1002 },
        { "second-hello", 1002 },
        { "oversized", 1009 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BadInput_GetsAClearCloseCode_AndOtherSessionsCarryOn(string kind, int expected)
    {
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-bad-{Guid.NewGuid():N}.bin"),
            server: o => o.MaxMessageSize = 4096);
        var options = SessionResumeTests.SessionClient(host.Uri("/echo"));
        await using var bystander = new LifelineClient(options);
        await bystander.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        using var socket = await ConnectAsync(host.Uri("/echo"));
        switch (kind)
        {
            case "garbage-before-hello":
                await SendAsync(socket, [0xDE, 0xAD, 0xBE, 0xEF]);
                break;
            case "text-message":
                await SendAsync(socket, "hello"u8.ToArray(), WebSocketMessageType.Text);
                break;
            case "unknown-type":
                await HelloAsync(socket);
                await SendAsync(socket, [0x09, 0x01]);
                break;
            case "sequence-gap":
                await HelloAsync(socket);
                await SendAsync(socket, Frame(w => SessionFrameWriter.WriteData(w, 1, 0, false, [1])));
                await SendAsync(socket, Frame(w => SessionFrameWriter.WriteData(w, 3, 0, false, [3])));
                break;
            case "ack-beyond-sent":
                await HelloAsync(socket);
                await SendAsync(socket, Frame(w => SessionFrameWriter.WriteAck(w, 5)));
                break;
            case "second-hello":
                await HelloAsync(socket);
                await SendAsync(socket, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
                break;
            case "oversized":
                await HelloAsync(socket);
                await SendAsync(socket, Frame(w => SessionFrameWriter.WriteData(w, 1, 0, false, new byte[8192])));
                break;
        }

        var (code, _, _) = await ReadUntilCloseAsync(socket);
        Assert.Equal(expected, code);

        await bystander.SendTextAsync("still here");
        Assert.Equal("still here", (await Wait.ReadAsync(bystander.Messages)).Text);
    }

    [Fact]
    public async Task Resume_WithWrongTokenOrUnknownSession_IsRefusedOrLost()
    {
        var log = new NumberedServerLog();
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-bad-{Guid.NewGuid():N}.bin"));
        using var owner = await ConnectAsync(host.Uri("/echo"));
        var (id, _) = await HelloAsync(owner);

        // A token that does not belong to the id: 1008, same reason as any refusal.
        using var wrong = await ConnectAsync(host.Uri("/echo"));
        await SendAsync(wrong, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, ResumeToken.Create(), 0))));
        var (code, reason, _) = await ReadUntilCloseAsync(wrong);
        Assert.Equal(1008, code);
        Assert.Equal(SessionProtocol.RefusedReason, reason);

        // A well-formed token for a session that does not exist: SessionLost (not found), and the socket stays usable.
        using var unknown = await ConnectAsync(host.Uri("/echo"));
        var token = ResumeToken.Create();
        await SendAsync(unknown, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(token.DeriveSessionId(), token, 0))));
        var buffer = new byte[1024];
        var result = await unknown.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, result.Count)), int.MaxValue, out var header, out _);
        Assert.Equal(SessionFrameType.SessionLost, header.Type);
        Assert.Equal(SessionLostReason.NotFound, header.SessionLost.Reason);
        var (_, _) = await HelloAsync(unknown);
    }

    [Fact]
    public async Task SessionsDroppedAtOnce_BeyondMaxSessions_NewOnesGet1013WithAHint_ResumesAreServed()
    {
        // A client that opens a session and drops its socket leaves the session for its resume window. Before MaxSessions,
        // repeating that held one session (and its handler) per round, however many connections were allowed.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), Path.Combine(Path.GetTempPath(), $"lifeline-max-{Guid.NewGuid():N}.bin"),
            sessions: o => o.MaxSessions = 2);
        var dropped = new List<(SessionId Id, ResumeToken Token)>();
        for (var i = 0; i < 2; i++)
        {
            using var socket = await ConnectAsync(host.Uri("/echo"));
            dropped.Add(await HelloAsync(socket));
            socket.Abort();
        }

        Assert.Equal(2, host.Sessions.Count);
        using var third = await ConnectAsync(host.Uri("/echo"));
        await SendAsync(third, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var (code, reason, frames) = await ReadUntilCloseAsync(third);
        Assert.Equal(1013, code);
        Assert.StartsWith("too many sessions", reason, StringComparison.Ordinal);
        Assert.True(RetryHint.TryParse(reason, out _), reason);
        Assert.Empty(frames); // no Welcome

        // A plain-mode connection would be a session too.
        using var plain = new ClientWebSocket();
        await plain.ConnectAsync(host.Uri("/echo"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        var (plainCode, _, _) = await ReadUntilCloseAsync(plain);
        Assert.Equal(1013, plainCode);

        // A resume adds no session: served at the limit.
        using var resumer = await ConnectAsync(host.Uri("/echo"));
        var (id, token) = dropped[0];
        await SendAsync(resumer, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));
        var buffer = new byte[1024];
        var result = await resumer.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
        SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, result.Count)), int.MaxValue, out var header, out _);
        Assert.Equal(SessionFrameType.Resumed, header.Type);
        Assert.Equal(2, host.Sessions.Count);
        Assert.Contains("MaxSessions must be at least 1", Assert.Throws<ArgumentOutOfRangeException>(() => host.Sessions.Options.MaxSessions = 0).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoNewSessionsAtOnce_WithRoomForOne_TheSecondGets1013()
    {
        // The place is taken at the Hello, not when the session is listed after the Welcome (with a shared store, after
        // its round trips): before, every Hello that arrived in between found the count below the limit and passed it.
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), Path.Combine(Path.GetTempPath(), $"lifeline-max-{Guid.NewGuid():N}.bin"),
            sessions: o => o.MaxSessions = 1);
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = 0;
        host.Sessions.BeforeNewSessionWelcomeForTest = async () =>
        {
            if (Interlocked.Increment(ref held) == 1)
            {
                reached.TrySetResult();
                await release.Task; // the first session is made, not listed yet
            }
        };

        using var first = await ConnectAsync(host.Uri("/echo"));
        var welcomed = HelloAsync(first);
        await reached.Task.WaitAsync(TimeSpan.FromSeconds(15));
        using var second = await ConnectAsync(host.Uri("/echo"));
        await SendAsync(second, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var (code, reason, _) = await ReadUntilCloseAsync(second);
        release.TrySetResult();

        Assert.Equal(1013, code);
        Assert.StartsWith("too many sessions", reason, StringComparison.Ordinal);
        await welcomed.WaitAsync(TimeSpan.FromSeconds(15)); // the first is welcomed
        Assert.Equal(1, host.Sessions.Count);
    }
}
