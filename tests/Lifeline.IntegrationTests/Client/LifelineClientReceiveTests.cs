using System.Net.WebSockets;
using System.Text;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Reconnect;

namespace Lifeline.IntegrationTests.Client;

public sealed class LifelineClientReceiveTests
{
    [Theory]
    [InlineData("receive")]
    [InlineData("messages")]
    [InlineData("read-all")]
    public async Task EchoApp_ValidMessageThenProtocolError_EchoReachesServerBeforeClose1002(string api)
    {
        // Autobahn 3.2-style: a valid message, then a frame with RSV bits set, written together. A raw ClientWebSocket
        // echo app writes the echo before it reads (and fails on) the second frame; so must a Lifeline echo app.
        await using var server = RawFrameServer.Start(
            RawFrameServer.Frame(0x1, Encoding.UTF8.GetBytes("hello")),
            RawFrameServer.Frame(0x1, Encoding.UTF8.GetBytes("bad"), rsv: 2));
        // The order holds while the application reads within the read-ahead delay: a loaded machine may stall it longer.
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2), ReadAheadDelay = TimeSpan.FromSeconds(30) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));

        var buffer = new byte[1024];
        switch (api)
        {
            case "receive":
                while (await client.ReceiveAsync(buffer) is { Status: LifelineReceiveStatus.Message } result)
                {
                    await client.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType);
                }

                break;
            case "messages":
                while (await client.Messages.WaitToReadAsync(timeout.Token))
                {
                    var message = await client.Messages.ReadAsync(timeout.Token);
                    await client.SendAsync(message.Data, message.Type);
                }

                break;
            default:
                await foreach (var message in client.ReadAllAsync(timeout.Token))
                {
                    await client.SendAsync(message.Data, message.Type);
                }

                break;
        }

        var closed = await states.NextAsync(LifelineClientState.Closed);
        Assert.Equal(CloseCode.ProtocolError, closed.Close!.Code);
        await Wait.UntilAsync(() => { lock (server.Received) { return server.Received.Count == 1; } }, what: "the server's record of the connection");
        var frames = RawFrameServer.ClientFrames(server.Received[0]);
        Assert.True(frames.Count >= 2, $"expected the echo and a Close frame, got {frames.Count} frame(s)");
        Assert.Equal((byte)0x1, frames[0].Opcode);
        Assert.Equal("hello", Encoding.UTF8.GetString(frames[0].Payload));
        Assert.Equal((byte)0x8, frames[1].Opcode);
        Assert.Equal(1002, (frames[1].Payload[0] << 8) | frames[1].Payload[1]);
    }

    [Fact]
    public async Task ReceiveAsync_ManySmallFramesAlreadyInTheSocket_AlmostAllAreTakenWithoutAPassThroughClientWebSocket()
    {
        // The direct path on real parts: a real socket, the real ClientWebSocket and the client's own stream under it.
        // All the frames are written before the application reads (the read-ahead delay keeps the client's loop from
        // reading first), so they are all in the socket when it does. If the direct path stopped running, every message
        // would still arrive, through ClientWebSocket, and only the count of messages taken would show it.
        const int Count = 1000;
        var frames = Enumerable.Range(1, Count).Select(i => RawFrameServer.Frame(0x2, [.. BitConverter.GetBytes(i), .. new byte[28]])).ToArray();

        var taken = await ReadHeldFramesAsync(frames, payload: 32);

        // Some may go through ClientWebSocket: the first frame, and a frame cut at the end of a read (965 of 1,000 were
        // taken here while a frame's short rest was read straight into ClientWebSocket's memory, which made the
        // connection's stream hand out 4 KiB pieces; 498 when every read after a frame's end went through ClientWebSocket).
        Assert.InRange(taken, Count * 9 / 10, Count);
    }

    [Fact]
    public async Task ReceiveAsync_Many4KFramesAlreadyInTheSocket_MostAreTakenWithoutAPassThroughClientWebSocket()
    {
        // 4 KiB messages (4,100 bytes a frame) on real parts. Until the rest of a frame under 16 KiB went through the
        // client's own buffer, reading it straight into ClientWebSocket's memory made the connection's stream fill its own
        // 4 KiB buffer and hand it out in 4 KiB pieces, so no frame was ever whole in the client's buffer: 0-1% were taken
        // directly, and every message went through ClientWebSocket.
        const int Count = 200; // 820 KB, all written before the client reads: well within the socket buffers
        var frames = Enumerable.Range(1, Count).Select(i => RawFrameServer.LongFrame(0x2, [.. BitConverter.GetBytes(i), .. new byte[4092]])).ToArray();

        var taken = await ReadHeldFramesAsync(frames, payload: 4096);

        Assert.InRange(taken, Count / 2, Count);
    }

    /// <summary>
    /// Has a raw server write <paramref name="frames"/> (binary, each numbered 1..n in its first 4 bytes) before the
    /// application reads (the read-ahead delay keeps the client's loop from reading first), reads them all with
    /// ReceiveAsync, checks each is whole and in order, and returns how many the client took from its link directly.
    /// </summary>
    private static async Task<int> ReadHeldFramesAsync(byte[][] frames, int payload)
    {
        await using var server = RawFrameServer.StartHeld(frames);
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2), ReadAheadDelay = TimeSpan.FromSeconds(60) };
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        server.Release();
        await server.Written.WaitAsync(TimeSpan.FromSeconds(15));

        var buffer = new byte[payload * 2];
        var received = new List<int>(frames.Length);
        while (received.Count < frames.Length)
        {
            var result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            Assert.Equal(LifelineReceiveStatus.Message, result.Status);
            Assert.Equal(payload, result.Count);
            received.Add(BitConverter.ToInt32(buffer));
        }

        Assert.Equal(Enumerable.Range(1, frames.Length), received);
        return client.MessagesTakenFromLink;
    }

    [Fact]
    public async Task ReceiveAsync_CalledBeforeTheConnectionIsUp_ThatReadAndTheNextOnesAllComplete()
    {
        // A read that finds no connection yet waits for one (and its reader slot must be given back after): the
        // later reads, which take the per-message path, must not wait behind it.
        await using var server = RawFrameServer.Start(
            RawFrameServer.Frame(0x2, [1]), RawFrameServer.Frame(0x2, [2]), RawFrameServer.Frame(0x2, [3]));
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2) };
        await using var client = new LifelineClient(options);
        var buffer = new byte[16];

        var first = client.ReceiveAsync(buffer).AsTask();
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(LifelineReceiveStatus.Message, (await first.WaitAsync(TimeSpan.FromSeconds(15))).Status);
        var received = new List<byte> { buffer[0] };
        for (var i = 0; i < 2; i++)
        {
            var result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            Assert.Equal(LifelineReceiveStatus.Message, result.Status);
            received.Add(buffer[0]);
        }

        Assert.Equal([1, 2, 3], received);
    }

    [Fact]
    public async Task ReceiveAsync_ReadsThatPauseAndReadsWithATokenBetweenDirectOnes_EveryMessageOnceAndInOrder()
    {
        // The per-message path takes the socket without the hand-off lock. Pauses longer than the read-ahead delay let
        // the connection's loop read ahead into its buffer and cancellable reads go through the loop's hand-off, so the
        // direct reads keep meeting a socket that someone else just had: nothing may be lost, doubled or reordered.
        const int Count = 3000;
        var frames = Enumerable.Range(1, Count).Select(i => RawFrameServer.Frame(0x2, BitConverter.GetBytes(i))).ToArray();
        await using var server = RawFrameServer.Start(frames);
        // A small buffer: the loop fills it during a pause and leaves the socket free with more data waiting in it.
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2), ReceiveCapacity = 100 };
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        var buffer = new byte[16];
        var received = new List<int>(Count);
        while (received.Count < Count)
        {
            if (received.Count is 400 or 1400 or 2400) // each followed by a direct read
            {
                await Task.Delay(600, timeout.Token); // longer than the read-ahead delay (250-500 ms)
            }

            var result = received.Count % 7 == 3
                ? await client.ReceiveAsync(buffer, timeout.Token)
                : await client.ReceiveAsync(buffer).AsTask().WaitAsync(timeout.Token);
            Assert.Equal(LifelineReceiveStatus.Message, result.Status);
            received.Add(BitConverter.ToInt32(buffer, 0));
        }

        Assert.Equal(Enumerable.Range(1, Count), received);
    }

    [Fact]
    public async Task ReceiveAsync_ReaderStopsAfterOneMessage_LoopTakesTheSocketBackAndSeesTheServersClose()
    {
        // A reader keeps the socket between its reads. When the application stops reading, the connection's loop must
        // take it back to read ahead and to see the server's Close; otherwise the close would go unnoticed.
        await using var server = RawFrameServer.Start(
            RawFrameServer.Frame(0x2, [1]), RawFrameServer.Frame(0x2, [2]), RawFrameServer.Frame(0x8, [0x03, 0xE9, (byte)'b', (byte)'y', (byte)'e']));
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var buffer = new byte[16];

        var first = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal((LifelineReceiveStatus.Message, (byte)1), (first.Status, buffer[0]));

        var closed = await states.NextAsync(LifelineClientState.Closed);
        Assert.Equal(CloseCode.GoingAway, closed.Close!.Code);
        var second = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal((LifelineReceiveStatus.Message, (byte)2), (second.Status, buffer[0]));
        Assert.Equal(LifelineReceiveStatus.Closed, (await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15))).Status);
    }

    [Fact]
    public async Task ReceiveAsync_CancelledJustAfterTheLoopHandedItTheSocket_LoopStillReadsOnAndSeesTheServersClose()
    {
        // A reader with a token waits while the loop holds a zero-byte read; data arrives and the loop hands the socket
        // over; the token is cancelled before the reader goes on. The reader must give the socket back: otherwise nobody
        // reads it until the application reads again, and the server's Close (or a dead link) goes unnoticed.
        await using var server = RawFrameServer.StartHeld(RawFrameServer.Frame(0x2, [7]), RawFrameServer.Frame(0x8, [0x03, 0xE9]));
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        using var cancel = new CancellationTokenSource();
        client.AfterHandOffWaitForTest = cancel.Cancel;
        var buffer = new byte[16];

        var read = client.ReceiveAsync(buffer, cancel.Token).AsTask();
        await Wait.UntilAsync(() => client.HasReaderWaitingForHandOff, what: "the reader to wait for the loop's hand-off");
        server.Release();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(TimeSpan.FromSeconds(15)));
        client.AfterHandOffWaitForTest = null;
        var closed = await states.NextAsync(LifelineClientState.Closed);
        Assert.Equal(CloseCode.GoingAway, closed.Close!.Code);
        var message = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal((LifelineReceiveStatus.Message, (byte)7), (message.Status, buffer[0]));
    }

    [Fact]
    public async Task ReceiveAsync_AfterTheReceiveBufferWasFull_LoopStillTakesTheSocketBackAndSeesTheServersClose()
    {
        // The loop waits while the application has not made room in a full buffer. The application then empties it and
        // reads the next message straight from the socket, keeping it, and stops reading: the loop must look again by
        // itself (nothing wakes it) to read the rest and see the Close.
        const int Capacity = 10;
        var frames = Enumerable.Range(1, Capacity + 5).Select(i => RawFrameServer.Frame(0x2, [(byte)i]))
            .Append(RawFrameServer.Frame(0x8, [0x03, 0xE9])).ToArray();
        await using var server = RawFrameServer.Start(frames);
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2), ReceiveCapacity = Capacity };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await Wait.UntilAsync(() => client.Statistics.MessagesReceived >= Capacity, what: "the loop filling the receive buffer");

        var buffer = new byte[16];
        for (var i = 1; i <= Capacity + 1; i++)
        {
            var result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            Assert.Equal((LifelineReceiveStatus.Message, (byte)i), (result.Status, buffer[0]));
        }

        var closed = await states.NextAsync(LifelineClientState.Closed);
        Assert.Equal(CloseCode.GoingAway, closed.Close!.Code);
        for (var i = Capacity + 2; i <= Capacity + 5; i++)
        {
            var result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            Assert.Equal((LifelineReceiveStatus.Message, (byte)i), (result.Status, buffer[0]));
        }
    }

    [Fact]
    public async Task ReceiveAsync_DestinationTooSmall_KeepsMessageUntilItFits()
    {
        var payload = Encoding.UTF8.GetBytes("a message of forty bytes, give or take.");
        await using var server = RawFrameServer.Start(RawFrameServer.Frame(0x2, payload), RawFrameServer.Frame(0x1, Encoding.UTF8.GetBytes("next")));
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2) };
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var small = new byte[8];
        var tooSmall = await client.ReceiveAsync(small).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(new LifelineReceiveResult(LifelineReceiveStatus.DestinationTooSmall, payload.Length, WebSocketMessageType.Binary), tooSmall);

        var big = new byte[tooSmall.Count];
        var whole = await client.ReceiveAsync(big).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(LifelineReceiveStatus.Message, whole.Status);
        Assert.Equal(payload, big);

        var next = await client.ReceiveAsync(small).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal((LifelineReceiveStatus.Message, WebSocketMessageType.Text), (next.Status, next.MessageType));
        Assert.Equal("next", Encoding.UTF8.GetString(small, 0, next.Count));
    }

    [Fact]
    public async Task ReceiveAsync_CancelledWhileWaiting_ConnectionStaysUpAndNextMessageArrives()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var buffer = new byte[64];

        using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReceiveAsync(buffer, cancel.Token).AsTask());
        }

        await client.SendTextAsync("after a cancelled read");
        var result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal("after a cancelled read", Encoding.UTF8.GetString(buffer, 0, result.Count));
        Assert.Equal(LifelineClientState.Connected, client.State);
        Assert.Equal(1, client.Statistics.Connects);
    }

    [Fact]
    public async Task ReceiveAsync_FramesOfEveryKindArrivingTogether_EachMessageWholeAndInOrder_AndThePingAnswered()
    {
        // Written at once after the client is up, so they reach it in a few reads: the client takes whole buffered
        // frames itself and leaves the rest (a Ping, fragments, a frame larger than its buffer, a message larger than
        // the caller's memory, the Close) to ClientWebSocket. Every message must come out whole, once, in order.
        static byte[] Bytes(int count, int seed) => [.. Enumerable.Range(0, count).Select(i => (byte)(i * 7 + seed))];
        var expected = new List<(WebSocketMessageType Type, byte[] Data)>
        {
            (WebSocketMessageType.Binary, [1]),
            (WebSocketMessageType.Text, Encoding.UTF8.GetBytes("héllo")),
            (WebSocketMessageType.Binary, Bytes(300, 3)),
            (WebSocketMessageType.Text, Encoding.UTF8.GetBytes("fragment")),
            (WebSocketMessageType.Binary, []),
            (WebSocketMessageType.Binary, Bytes(70_000, 5)),
            (WebSocketMessageType.Binary, Bytes(100, 9)),
            (WebSocketMessageType.Text, Encoding.UTF8.GetBytes("end")),
        };
        await using var server = RawFrameServer.StartHeld(
            RawFrameServer.LongFrame(0x2, expected[0].Data),
            RawFrameServer.LongFrame(0x1, expected[1].Data),
            RawFrameServer.Frame(0x9, [9, 9]),
            RawFrameServer.LongFrame(0x2, expected[2].Data),
            RawFrameServer.LongFrame(0x1, Encoding.UTF8.GetBytes("frag"), fin: false),
            RawFrameServer.Frame(0xA, [4]), // an unasked Pong between the fragments
            RawFrameServer.LongFrame(0x0, Encoding.UTF8.GetBytes("ment")),
            RawFrameServer.LongFrame(0x2, expected[4].Data),
            RawFrameServer.LongFrame(0x2, expected[5].Data),
            RawFrameServer.LongFrame(0x2, expected[6].Data),
            RawFrameServer.LongFrame(0x1, expected[7].Data),
            RawFrameServer.Frame(0x8, [0x03, 0xE8]));
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2), ReadAheadDelay = TimeSpan.FromSeconds(30) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var first = client.ReceiveAsync(new byte[128 * 1024]).AsTask();
        server.Release();
        Assert.Equal(LifelineReceiveStatus.Message, (await first.WaitAsync(TimeSpan.FromSeconds(15))).Status);

        var buffer = new byte[128 * 1024];
        var received = new List<(WebSocketMessageType, byte[])> { expected[0] };
        while (received.Count < expected.Count)
        {
            var room = received.Count == 6 ? 16 : buffer.Length; // the 100-byte message first meets too little memory
            var result = await client.ReceiveAsync(buffer.AsMemory(0, room)).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            if (result.Status == LifelineReceiveStatus.DestinationTooSmall)
            {
                Assert.Equal(100, result.Count);
                result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            }

            Assert.Equal(LifelineReceiveStatus.Message, result.Status);
            received.Add((result.MessageType, buffer[..result.Count]));
        }

        Assert.Equal(expected.Count, received.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Type, received[i].Item1);
            Assert.True(expected[i].Data.AsSpan().SequenceEqual(received[i].Item2), $"message {i} differs");
        }

        // The reader goes on to the Close frame, buffered behind the last message.
        Assert.Equal(LifelineReceiveStatus.Closed, (await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15))).Status);
        Assert.Equal(CloseCode.NormalClosure, (await states.NextAsync(LifelineClientState.Closed)).Close!.Code);
        await Wait.UntilAsync(() => { lock (server.Received) { return server.Received.Count == 1; } }, what: "the server's record of the connection");
        Assert.Contains(RawFrameServer.ClientFrames(server.Received[0]), frame => frame.Opcode == 0xA && frame.Payload.SequenceEqual(new byte[] { 9, 9 }));
    }

    [Theory]
    [InlineData("invalid UTF-8", (byte)0x1, (byte)0, 1007)]
    [InlineData("a reserved bit", (byte)0x2, (byte)4, 1002)]
    [InlineData("a reserved opcode", (byte)0x3, (byte)0, 1002)]
    public async Task ReceiveAsync_ABadFrameBehindGoodOnesArrivingTogether_TheGoodOnesThenTheRightCloseCode(string what, byte opcode, byte rsv, int code)
    {
        // The bad frame is buffered behind good ones the client takes itself: it must still reach ClientWebSocket,
        // which refuses it, and nothing after it may be delivered.
        var good = Enumerable.Range(1, 5).Select(i => RawFrameServer.Frame(0x2, [(byte)i])).ToArray();
        await using var server = RawFrameServer.StartHeld([.. good, RawFrameServer.Frame(opcode, [0xC3, 0x28], rsv), RawFrameServer.Frame(0x2, [99])]);
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2), ReadAheadDelay = TimeSpan.FromSeconds(30) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        var buffer = new byte[64];
        var first = client.ReceiveAsync(buffer).AsTask();
        server.Release();

        var received = new List<byte>();
        var result = await first.WaitAsync(TimeSpan.FromSeconds(15));
        while (result.Status == LifelineReceiveStatus.Message)
        {
            received.Add(buffer[0]);
            result = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        }

        Assert.True(received.SequenceEqual(new byte[] { 1, 2, 3, 4, 5 }), $"{what}: received [{string.Join(", ", received)}]");
        Assert.Equal(code, (await states.NextAsync(LifelineClientState.Closed)).Close!.Code.Value);
    }

    /// <summary>Parses the masked frames a client sent.</summary>
}
