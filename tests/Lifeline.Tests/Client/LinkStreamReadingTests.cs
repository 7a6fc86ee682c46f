using System.Net.WebSockets;
using System.Text;
using Lifeline.Client;

namespace Lifeline.Tests.Client;

/// <summary>
/// LinkStream's frame-by-frame reads: ClientWebSocket is never given a byte past the end of the frame it is reading,
/// so buffered whole frames after a message can be taken directly, and everything else is left exactly as it came.
/// </summary>
public class LinkStreamReadingTests
{
    /// <summary>Returns the chunks a test queues, each at most as large as asked for; records every read's size.</summary>
    private sealed class ScriptedConnection(params byte[][] chunks) : DuplexTestStream
    {
        private Queue<byte[]> _chunks = new(chunks);

        public List<int> Requests { get; } = [];

        /// <summary>Once the chunks are used up, reads wait (an idle link) instead of ending the stream.</summary>
        public bool WaitWhenEmpty { get; init; }

        /// <summary>
        /// The first read waits until the test calls <see cref="CompleteWaitingRead"/>, as on a quiet link where the
        /// bytes are not there yet.
        /// </summary>
        public bool FirstReadWaits { get; init; }

        private TaskCompletionSource<int>? _waitingRead;
        private Memory<byte> _waitingBuffer;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Requests.Add(buffer.Length);
            if (_chunks.Count == 0 && WaitWhenEmpty)
            {
                return new ValueTask<int>(new TaskCompletionSource<int>().Task);
            }

            if (FirstReadWaits && Requests.Count == 1)
            {
                (_waitingRead, _waitingBuffer) = (new TaskCompletionSource<int>(), buffer);
                return new ValueTask<int>(_waitingRead.Task);
            }

            return new ValueTask<int>(Take(buffer));
        }

        /// <summary>The bytes arrive for the read that waits (<see cref="FirstReadWaits"/>).</summary>
        public void CompleteWaitingRead() => _waitingRead!.SetResult(Take(_waitingBuffer));

        private int Take(Memory<byte> buffer)
        {
            if (buffer.IsEmpty || _chunks.Count == 0)
            {
                return 0;
            }

            var chunk = _chunks.Dequeue();
            var count = Math.Min(chunk.Length, buffer.Length);
            chunk.AsSpan(0, count).CopyTo(buffer.Span);
            if (count < chunk.Length)
            {
                _chunks = new Queue<byte[]>([chunk[count..], .. _chunks]);
            }

            return count;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => default; // a Pong, a Close
    }

    /// <summary>An unmasked server frame: FIN, opcode, payload of any length, optional mask bit.</summary>
    private static byte[] ServerFrame(byte opcode, byte[] payload, bool fin = true, byte rsv = 0, bool masked = false)
    {
        var first = (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
        var maskBit = masked ? 0x80 : 0;
        byte[] header = payload.Length switch
        {
            < 126 => [first, (byte)(maskBit | payload.Length)],
            <= ushort.MaxValue => [first, (byte)(maskBit | 126), (byte)(payload.Length >> 8), (byte)payload.Length],
            _ => [first, (byte)(maskBit | 127), 0, 0, 0, 0, (byte)(payload.Length >> 24), (byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length],
        };
        byte[] mask = masked ? [0, 0, 0, 0] : []; // a zero key leaves the payload as it is
        return [.. header, .. mask, .. payload];
    }

    private static byte[] Bytes(int count, byte start = 1) => [.. Enumerable.Range(0, count).Select(i => (byte)(start + i))];

    private static async Task<byte[]> ReadAllAsync(LinkStream link, int count, int readSize = int.MaxValue)
    {
        var bytes = new byte[count];
        for (var at = 0; at < count;)
        {
            var read = await link.ReadAsync(bytes.AsMemory(at, Math.Min(readSize, count - at)));
            Assert.True(read > 0, $"the stream ended after {at} of {count} bytes");
            at += read;
        }

        return bytes;
    }

    [Fact]
    public async Task ReadAsync_TwoFramesArriveInOneRead_TheSocketIsGivenOneFrameAtATime()
    {
        var first = ServerFrame(0x2, Bytes(32));
        var second = ServerFrame(0x1, Encoding.UTF8.GetBytes("hi"));
        var link = new LinkStream(new ScriptedConnection([.. first, .. second]), framed: true);
        var buffer = new byte[200];

        Assert.Equal(first.Length, await link.ReadAsync(buffer));
        Assert.Equal(first, buffer[..first.Length]);
        Assert.Equal(second.Length, await link.ReadAsync(buffer));
        Assert.Equal(second, buffer[..second.Length]);
        Assert.False(link.HoldsBuffer);
    }

    [Fact]
    public async Task ReadAsync_AHeaderSplitBetweenReads_StillStopsAtTheFramesEnd()
    {
        var first = ServerFrame(0x2, Bytes(300)); // a 16-bit length: four header bytes
        var second = ServerFrame(0x2, [9]);
        byte[] all = [.. first, .. second];
        var link = new LinkStream(new ScriptedConnection(all[..3], all[3..]), framed: true);

        Assert.Equal(first, await ReadAllAsync(link, first.Length));
        var buffer = new byte[100];
        Assert.Equal(second.Length, await link.ReadAsync(buffer));
        Assert.Equal(second, buffer[..second.Length]);
    }

    [Fact]
    public async Task ReadAsync_APartOfAFrameKeptInASmallBuffer_TheRestIsReadIntoAFullOne()
    {
        var first = ServerFrame(0x2, [1]);
        var second = ServerFrame(0x2, Bytes(3000));
        var connection = new ScriptedConnection([.. first, .. second[..2]], second[2..]);
        var link = new LinkStream(connection, framed: true);
        var buffer = new byte[100];

        Assert.Equal(first.Length, await link.ReadAsync(buffer));
        Assert.InRange(link.BufferLength, 2, 4096); // the start of the second frame's header

        Assert.Equal(second, await ReadAllAsync(link, second.Length));
        Assert.Equal(2, connection.Requests.Count);
        Assert.True(connection.Requests[1] > 4096, $"the rest was read with room for {connection.Requests[1]} bytes");
    }

    [Fact]
    public async Task ReadAsync_AFrameLargerThanTheBuffer_TheRestIsReadStraightIntoTheSocketsMemoryUpToTheFramesEnd()
    {
        var large = ServerFrame(0x2, Bytes(40_000));
        var next = ServerFrame(0x2, [7, 7]);
        byte[] all = [.. large, .. next];
        var connection = new ScriptedConnection(all[..1000], all[1000..]);
        var link = new LinkStream(connection, framed: true);

        var buffer = new byte[64 * 1024];
        var got = new List<byte>();
        while (got.Count < large.Length)
        {
            var read = await link.ReadAsync(buffer.AsMemory(0, Math.Min(buffer.Length, 50_000)));
            Assert.True(read > 0);
            got.AddRange(buffer[..read]);
        }

        Assert.Equal(large, got); // not a byte of the next frame
        Assert.Equal(next.Length, await link.ReadAsync(buffer));
        Assert.Equal(next, buffer[..next.Length]);
    }

    [Fact]
    public async Task TryReadMessage_AfterAMessageEnded_TakesTheWholeFramesBufferedBehindIt()
    {
        var first = ServerFrame(0x2, Bytes(32));
        var text = ServerFrame(0x1, Encoding.UTF8.GetBytes("héllo"));
        var medium = ServerFrame(0x2, Bytes(300, start: 5));
        var large = ServerFrame(0x2, Bytes(70_000 % 16_000, start: 9)); // well inside the buffer
        var link = new LinkStream(new ScriptedConnection([.. first, .. text, .. medium, .. large]), framed: true);
        var buffer = new byte[20_000];

        Assert.Equal(first.Length, await link.ReadAsync(buffer)); // as ClientWebSocket's read of the first message
        Assert.False(link.TryReadMessage(buffer, int.MaxValue, out _, out _)); // it has not handed that message out yet
        link.MarkMessageEnded();

        Assert.True(link.TryReadMessage(buffer, int.MaxValue, out var length, out var type));
        Assert.Equal((WebSocketMessageType.Text, "héllo"), (type, Encoding.UTF8.GetString(buffer, 0, length)));
        Assert.True(link.TryReadMessage(buffer, int.MaxValue, out length, out type));
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal(Bytes(300, start: 5), buffer[..length]);
        Assert.True(link.TryReadMessage(buffer, int.MaxValue, out length, out _));
        Assert.Equal(Bytes(70_000 % 16_000, start: 9), buffer[..length]);
        Assert.False(link.TryReadMessage(buffer, int.MaxValue, out _, out _));
        Assert.False(link.HoldsBuffer);
    }

    public static TheoryData<string, byte[], int, int> FramesLeftToTheSocket => new()
    {
        { "a Ping", ServerFrame(0x9, [1, 2]), 100, 100 },
        { "a Close", ServerFrame(0x8, [0x03, 0xE8]), 100, 100 },
        { "the first fragment of a message", ServerFrame(0x2, [1, 2], fin: false), 100, 100 },
        { "a continuation frame", ServerFrame(0x0, [1, 2]), 100, 100 },
        { "a reserved bit set", ServerFrame(0x2, [1, 2], rsv: 4), 100, 100 },
        { "a masked frame", ServerFrame(0x2, [1, 2], masked: true), 100, 100 },
        { "a reserved opcode", ServerFrame(0x3, [1, 2]), 100, 100 },
        { "text that is not UTF-8", ServerFrame(0x1, [0xC3, 0x28]), 100, 100 },
        { "a message larger than the caller's memory", ServerFrame(0x2, Bytes(50)), 49, 100 },
        { "a message larger than the largest allowed", ServerFrame(0x2, Bytes(50)), 100, 49 },
        { "a frame not all buffered yet", ServerFrame(0x2, Bytes(50))[..20], 100, 100 },
        { "a header not all buffered yet", ServerFrame(0x2, Bytes(150))[..3], 200, 200 },
        { "a 64-bit length past any memory", [0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2], 100, int.MaxValue },
        { "a 64-bit length with the top bit set", [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 2, 1, 2], 100, int.MaxValue },
    };

    [Theory]
    [MemberData(nameof(FramesLeftToTheSocket))]
    public async Task TryReadMessage_AFrameClientWebSocketMustSee_IsLeftAsItCameForTheSocket(string what, byte[] frame, int room, int maxLength)
    {
        var first = ServerFrame(0x2, [0]);
        var link = new LinkStream(new ScriptedConnection([.. first, .. frame]), framed: true);
        var buffer = new byte[200];
        Assert.Equal(first.Length, await link.ReadAsync(buffer));
        link.MarkMessageEnded();

        Assert.False(link.TryReadMessage(buffer.AsSpan(0, room), maxLength, out _, out _), what);

        Assert.Equal(frame, await ReadAllAsync(link, frame.Length));
    }

    [Fact]
    public async Task ReadAsync_OnADrainedConnection_ReadsIntoTheSocketsOwnMemoryAndKeepsOnlyWhatFollowsTheFrame()
    {
        // A read that will likely wait is made into ClientWebSocket's memory, so an idle connection holds no buffer.
        var first = ServerFrame(0x2, [1, 2, 3]);
        var second = ServerFrame(0x2, [4]);
        var third = ServerFrame(0x1, [5, 6]);
        var connection = new ScriptedConnection([.. first, .. second], third);
        var link = new LinkStream(connection, framed: true);
        var buffer = new byte[100];

        Assert.Equal(first.Length, await link.ReadAsync(buffer));
        Assert.Equal(first, buffer[..first.Length]);
        Assert.True(link.HoldsBuffer); // the second frame, kept
        Assert.InRange(link.BufferLength, second.Length, 4096); // in a buffer its size: thousands of clients reconnecting at once each hold one
        Assert.Equal(second.Length, await link.ReadAsync(buffer));
        Assert.Equal(second, buffer[..second.Length]);
        Assert.False(link.HoldsBuffer); // everything handed out: back to the pool
        Assert.Equal(third.Length, await link.ReadAsync(buffer));
        Assert.Equal(third, buffer[..third.Length]);

        Assert.Equal([100, 100], connection.Requests); // both reads from the connection into the caller's memory
        Assert.False(link.HoldsBuffer);
    }

    [Fact]
    public async Task ReadAsync_AfterAFrameLargerThanTheSocketsHeaderBuffer_TheNextWaitHoldsNoBuffer()
    {
        // A reply on a quiet link, read as ClientWebSocket reads: the header into its 125-byte buffer (filled to the
        // last byte, after a wait), then the rest of the payload. The link then goes quiet again: the read that waits
        // must not hold a buffer.
        var frame = ServerFrame(0x2, Bytes(4000));
        var connection = new ScriptedConnection(frame[..125], frame[125..]) { WaitWhenEmpty = true, FirstReadWaits = true };
        var link = new LinkStream(connection, framed: true);
        var header = new byte[125];

        var first = link.ReadAsync(header);
        Assert.False(first.IsCompleted);
        connection.CompleteWaitingRead();
        Assert.Equal(125, await first);
        Assert.Equal(frame[125..], await ReadAllAsync(link, frame.Length - 125));

        var waiting = link.ReadAsync(header);
        Assert.False(waiting.IsCompleted);
        Assert.False(link.HoldsBuffer);
    }

    [Fact]
    public async Task ReadAsync_WhileDataKeepsComing_FillsABufferOfItsOwn()
    {
        var frame = ServerFrame(0x2, Bytes(20));
        var connection = new ScriptedConnection([.. frame, .. frame, .. frame, .. frame, .. frame], [.. frame, .. frame]);
        var link = new LinkStream(connection, framed: true);
        var buffer = new byte[2 * frame.Length]; // filled to the last byte by the first read: data keeps coming

        for (var i = 0; i < 7; i++)
        {
            Assert.Equal(frame.Length, await link.ReadAsync(buffer));
            Assert.Equal(frame, buffer[..frame.Length]);
        }

        Assert.Equal(2 * frame.Length, connection.Requests[0]);
        Assert.True(connection.Requests[1] >= 16 * 1024, $"read of {connection.Requests[1]} bytes");
    }

    [Fact]
    public async Task ReadAsync_4KFramesAlreadyThere_AfterTheFirstHeaderTheReadsFillABufferOfItsOwn()
    {
        // As ClientWebSocket reads each frame: the header into its 125-byte buffer, then the rest. The first read found
        // its bytes there without waiting: data keeps coming, so the rest of that frame (under 16 KiB) and the frames
        // after it come from large reads into the buffer. (Read straight into ClientWebSocket's memory, a rest under
        // 4 KiB made the HTTP connection's stream fill its own 4 KiB buffer and hand it out in 4 KiB pieces, so no 4 KiB
        // frame was ever whole in the buffer to be taken directly.)
        var frame = ServerFrame(0x2, Bytes(4000));
        var connection = new ScriptedConnection([.. frame, .. frame, .. frame, .. frame, .. frame, .. frame]);
        var link = new LinkStream(connection, framed: true);

        for (var i = 0; i < 6; i++)
        {
            var header = await ReadAllAsync(link, 125);
            var rest = await ReadAllAsync(link, frame.Length - 125);
            Assert.Equal(frame, header.Concat(rest).ToArray());
        }

        Assert.Equal(125, connection.Requests[0]);
        Assert.All(connection.Requests.Skip(1), request => Assert.True(request >= 16 * 1024, $"reads from the connection: {string.Join(", ", connection.Requests)}"));
    }

    [Fact]
    public async Task ReadAsync_QuietLink_TheRestOfAFrameThatIsNotThereYet_IsWaitedForWithoutABufferHeld()
    {
        // A 5,000-byte reply on a quiet link whose rest is late (a stalled sender, a lost packet, a link that died inside
        // the frame): the wait for it holds no pooled buffer, as an idle link holds none.
        var frame = ServerFrame(0x2, Bytes(5000));
        var connection = new ScriptedConnection(frame[..125]) { FirstReadWaits = true, WaitWhenEmpty = true };
        var link = new LinkStream(connection, framed: true);

        var headerRead = link.ReadAsync(new byte[125]).AsTask();
        connection.CompleteWaitingRead();
        Assert.Equal(125, await headerRead.WaitAsync(TimeSpan.FromSeconds(30)));
        var rest = link.ReadAsync(new byte[frame.Length - 125]).AsTask();

        Assert.False(rest.IsCompleted);
        Assert.False(link.HoldsBuffer);
        Assert.Equal(0, connection.Requests[^1]); // the wait is a zero-byte read
    }

    [Fact]
    public async Task ReadAsync_LargeFrameAlreadyThere_ItsRestGoesStraightIntoTheReadersMemory()
    {
        // A rest of 16 KiB or more is not copied twice: it is read straight into ClientWebSocket's memory.
        var frame = ServerFrame(0x2, Bytes(40_000));
        var connection = new ScriptedConnection([.. frame, .. frame]);
        var link = new LinkStream(connection, framed: true);

        var header = await ReadAllAsync(link, 125);
        var rest = await ReadAllAsync(link, frame.Length - 125);

        Assert.Equal(frame, header.Concat(rest).ToArray());
        Assert.Equal([125, frame.Length - 125], connection.Requests[..2]);
        Assert.False(link.HoldsBuffer);
    }

    [Fact]
    public async Task ReadAsync_WhileSmallFramesKeepComing_AFrameCutAtTheBuffersEnd_DoesNotTurnEveryLaterReadIntoASmallOne()
    {
        // A flood of small frames, all there at once, read as ClientWebSocket reads them (into its 125-byte header
        // buffer). The one frame cut at the end of the 64 KiB buffer has its rest read straight into the socket's
        // memory; that must not count as 'the link went quiet', or every later read goes into the header buffer: two
        // reads from the connection for every three frames instead of one per 64 KiB.
        var frame = ServerFrame(0x2, Bytes(32));
        const int Frames = 4000; // 136,000 bytes: more than two buffers' worth
        var flood = new byte[Frames * frame.Length];
        for (var i = 0; i < Frames; i++)
        {
            frame.CopyTo(flood, i * frame.Length);
        }

        var connection = new ScriptedConnection(flood);
        var link = new LinkStream(connection, framed: true);

        var received = await ReadAllAsync(link, flood.Length, readSize: 125);

        Assert.Equal(flood, received);
        Assert.True(connection.Requests.Count <= 10, $"{connection.Requests.Count} reads from the connection: {string.Join(", ", connection.Requests.Take(20))}");
    }

    public static TheoryData<int> Seeds => [.. Enumerable.Range(1, 16)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task UnderARealClientWebSocket_RandomFramesInRandomPieces_EveryMessageWholeOnceAndInOrder(int seed)
    {
        // ClientWebSocket's own implementation reads through the stream while the reader takes buffered frames between
        // its messages, as LifelineClient does, with peeks and too-small memory mixed in. Frames of every size and kind
        // arrive cut at random places.
        var random = new Random(seed);
        var expected = new List<(WebSocketMessageType Type, byte[] Data)>();
        var wire = new List<byte>();
        for (var i = 0; i < 150; i++)
        {
            var size = random.Next(10) switch
            {
                < 6 => random.Next(0, 200),
                < 9 => random.Next(200, 5000),
                _ => random.Next(60_000, 100_000),
            };
            var data = new byte[size];
            random.NextBytes(data);
            var text = random.Next(3) == 0;
            if (text)
            {
                data = Encoding.UTF8.GetBytes(new string([.. data.Select(b => (char)('a' + (b % 26)))]) + "é");
            }

            var opcode = (byte)(text ? 0x1 : 0x2);
            expected.Add((text ? WebSocketMessageType.Text : WebSocketMessageType.Binary, data));
            if (random.Next(8) == 0 && data.Length > 4)
            {
                var cut = random.Next(1, data.Length - 1); // two fragments, a Ping between them
                wire.AddRange(ServerFrame(opcode, data[..cut], fin: false));
                wire.AddRange(ServerFrame(0x9, [1]));
                wire.AddRange(ServerFrame(0x0, data[cut..]));
            }
            else
            {
                wire.AddRange(ServerFrame(opcode, data));
            }

            if (random.Next(10) == 0)
            {
                wire.AddRange(ServerFrame(0xA, [2])); // an unasked Pong
            }
        }

        wire.AddRange(ServerFrame(0x8, [0x03, 0xE8]));
        var chunks = new List<byte[]>();
        for (var at = 0; at < wire.Count;)
        {
            var length = Math.Min(wire.Count - at, random.Next(3) == 0 ? random.Next(1, 8) : random.Next(1, 9000));
            chunks.Add([.. wire.GetRange(at, length)]);
            at += length;
        }

        var link = new LinkStream(new ScriptedConnection([.. chunks]), framed: true);
        using var socket = WebSocket.CreateFromStream(link, new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });
        var buffer = new byte[128 * 1024];
        var received = new List<(WebSocketMessageType Type, byte[] Data)>();
        var taken = 0;
        while (true)
        {
            var room = random.Next(5) == 0 ? random.Next(1, 64) : buffer.Length;
            if (random.Next(5) != 0 && link.TryReadMessage(buffer.AsSpan(0, room), int.MaxValue, out var length, out var type))
            {
                received.Add((type, buffer[..length]));
                taken++;
                continue;
            }

            if (random.Next(6) == 0)
            {
                var peek = await socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None); // as the receive loop waits for data
                if (peek.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                if (peek.EndOfMessage)
                {
                    received.Add((peek.MessageType, [])); // an empty message, whole
                    link.MarkMessageEnded();
                    continue;
                }
            }

            var message = new List<byte>();
            ValueWebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(buffer.AsMemory(0, room), CancellationToken.None);
                message.AddRange(buffer[..result.Count]);
            }
            while (!result.EndOfMessage);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                break;
            }

            received.Add((result.MessageType, [.. message]));
            link.MarkMessageEnded();
        }

        Assert.Equal(expected.Count, received.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(expected[i].Type == received[i].Type && expected[i].Data.AsSpan().SequenceEqual(received[i].Data), $"message {i} differs (seed {seed})");
        }

        Assert.True(taken > 0, "no message was taken from the buffer");
    }

    [Fact]
    public async Task ReadAsync_TheStreamEndsInsideAHeader_HandsOverWhatIsLeftThenTheEnd()
    {
        var link = new LinkStream(new ScriptedConnection([0x82, 0x7E, 0x01]), framed: true);
        var buffer = new byte[100];

        Assert.Equal(3, await link.ReadAsync(buffer));
        Assert.Equal(0, await link.ReadAsync(buffer));
        Assert.False(link.HoldsBuffer);
    }

    [Fact]
    public async Task ReadAsync_NotFramed_PassesEveryReadThroughAsItIs()
    {
        var first = ServerFrame(0x2, Bytes(32));
        var connection = new ScriptedConnection([.. first, .. first]);
        var link = new LinkStream(connection);
        var buffer = new byte[200];

        Assert.Equal(2 * first.Length, await link.ReadAsync(buffer));
        Assert.Equal([200], connection.Requests);
        Assert.False(link.TryReadMessage(buffer, int.MaxValue, out _, out _));
    }

    [Fact]
    public async Task TryReadMessage_TakenMessages_CountAsReadsForTheKeepAlive()
    {
        var frame = ServerFrame(0x2, [1]);
        var link = new LinkStream(new ScriptedConnection([.. frame, .. frame, .. frame]), framed: true);
        var buffer = new byte[100];
        Assert.Equal(frame.Length, await link.ReadAsync(buffer));
        link.MarkMessageEnded();
        var before = link.Reads;

        Assert.True(link.TryReadMessage(buffer, int.MaxValue, out _, out _));
        Assert.True(link.TryReadMessage(buffer, int.MaxValue, out _, out _));

        Assert.Equal(before + 2, link.Reads);
    }
}
