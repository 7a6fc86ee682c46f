using System.Buffers.Binary;
using Lifeline.Diagnostics.Raw;

namespace Lifeline.Diagnostics.Tests.Raw;

public sealed class FrameReaderTests
{
    private static readonly byte[] Mask = [0x37, 0xFA, 0x21, 0x3D];

    /// <summary>Encodes one frame: FIN and opcode, then the length in the form asked for, then the (masked) payload.</summary>
    internal static byte[] Frame(byte opcode, byte[] payload, bool fin = true, bool masked = false, LengthForm? form = null)
    {
        var header = new List<byte> { (byte)((fin ? 0x80 : 0) | opcode) };
        var maskBit = masked ? 0x80 : 0;
        var actual = form ?? (payload.Length <= 125 ? LengthForm.Seven : payload.Length <= ushort.MaxValue ? LengthForm.Sixteen : LengthForm.SixtyFour);
        switch (actual)
        {
            case LengthForm.Seven:
                header.Add((byte)(maskBit | payload.Length));
                break;
            case LengthForm.Sixteen:
                header.Add((byte)(maskBit | 126));
                header.AddRange(BigEndian16((ushort)payload.Length));
                break;
            default:
                header.Add((byte)(maskBit | 127));
                header.AddRange(BigEndian64((ulong)payload.Length));
                break;
        }

        var body = payload.ToArray();
        if (masked)
        {
            header.AddRange(Mask);
            for (var i = 0; i < body.Length; i++)
            {
                body[i] ^= Mask[i % 4];
            }
        }

        return [.. header, .. body];
    }

    internal static byte[] BigEndian16(ushort value)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
        return bytes;
    }

    internal static byte[] BigEndian64(ulong value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return bytes;
    }

    private static byte[] Payload(int length) => [.. Enumerable.Range(0, length).Select(i => (byte)(i * 7))];

    private static FrameReader Reader(byte[] data, int maxPayload = FrameReader.DefaultMaxPayload, bool oneByteAtATime = false) =>
        new(oneByteAtATime ? new TrickleStream(data) : new MemoryStream(data), maxPayload);

    private static async Task<FrameException> RefusedAsync(byte[] data, int maxPayload = FrameReader.DefaultMaxPayload)
    {
        var reader = Reader(data, maxPayload);
        return await Assert.ThrowsAsync<FrameException>(() => reader.ReadFrameAsync(CancellationToken.None));
    }

    public enum LengthForm
    {
        Seven,
        Sixteen,
        SixtyFour,
    }

    [Theory]
    [InlineData(0, LengthForm.Seven, false)]
    [InlineData(125, LengthForm.Seven, false)]
    [InlineData(125, LengthForm.Seven, true)]
    [InlineData(126, LengthForm.Sixteen, false)]
    [InlineData(65_535, LengthForm.Sixteen, true)]
    [InlineData(65_536, LengthForm.SixtyFour, false)]
    [InlineData(70_000, LengthForm.SixtyFour, true)]
    [InlineData(10, LengthForm.SixtyFour, false)] // a longer form than needed is still read
    public async Task ReadFrameAsync_EveryLengthForm_ReadsTheWholePayload(int length, LengthForm form, bool masked)
    {
        var payload = Payload(length);
        var reader = Reader(Frame(RawFrame.Binary, payload, masked: masked, form: form));

        var frame = await reader.ReadFrameAsync(CancellationToken.None);

        Assert.Equal(RawFrame.Binary, frame.Opcode);
        Assert.True(frame.Fin);
        Assert.Equal(payload, frame.Payload);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadFrameAsync_OneByteAtATime_ReadsEveryFrameInOrder(bool masked)
    {
        byte[] data = [.. Frame(RawFrame.Text, "hello"u8.ToArray(), masked: masked), .. Frame(RawFrame.Ping, [1, 2], masked: masked), .. Frame(RawFrame.Binary, Payload(300), masked: masked)];
        var reader = Reader(data, oneByteAtATime: true);

        var first = await reader.ReadFrameAsync(CancellationToken.None);
        var second = await reader.ReadFrameAsync(CancellationToken.None);
        var third = await reader.ReadFrameAsync(CancellationToken.None);

        Assert.Equal([RawFrame.Text, RawFrame.Ping, RawFrame.Binary], new[] { first.Opcode, second.Opcode, third.Opcode });
        Assert.Equal("hello"u8.ToArray(), first.Payload);
        Assert.Equal([1, 2], second.Payload);
        Assert.Equal(Payload(300), third.Payload);
    }

    [Theory]
    [InlineData(999)]
    [InlineData(1004)]
    [InlineData(1005)]
    [InlineData(1006)]
    [InlineData(1015)]
    [InlineData(1016)]
    [InlineData(2999)]
    [InlineData(5000)]
    public async Task ReadFrameAsync_CloseWithACodeNoEndpointMaySend_RefusedWith1002(int code)
    {
        // A client such as ClientWebSocket fails the connection with 1002 here; before, the probe took the code as sent.
        var refused = await RefusedAsync(Frame(RawFrame.Close, [(byte)(code >> 8), (byte)code]));

        Assert.Equal(1002, refused.CloseCode);
        Assert.Contains(code.ToString(System.Globalization.CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(1012)]
    [InlineData(1014)]
    [InlineData(3000)]
    [InlineData(4999)]
    public async Task ReadFrameAsync_CloseWithASendableCode_IsRead(int code)
    {
        var frame = await Reader(Frame(RawFrame.Close, [(byte)(code >> 8), (byte)code, .. "bye"u8])).ReadFrameAsync(CancellationToken.None);

        Assert.Equal(RawFrame.Close, frame.Opcode);
    }

    [Fact]
    public async Task ReadFrameAsync_MaskedFrameFromAServer_RefusedWith1002()
    {
        var reader = new FrameReader(new MemoryStream(Frame(RawFrame.Text, "hi"u8.ToArray(), masked: true)), fromServer: true);

        var refused = await Assert.ThrowsAsync<FrameException>(() => reader.ReadFrameAsync(CancellationToken.None));

        Assert.Equal(1002, refused.CloseCode);
        Assert.Contains("masked", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadFrameAsync_CloseReasonNotUtf8_RefusedWith1007()
    {
        var refused = await RefusedAsync(Frame(RawFrame.Close, [0x03, 0xE8, 0xC3, 0x28])); // 1000, then a broken two-byte sequence

        Assert.Equal(1007, refused.CloseCode);
    }

    [Theory]
    [InlineData(0x8000_0000_0000_0000UL)]
    [InlineData(0x8000_0000_0000_0005UL)]
    [InlineData(ulong.MaxValue)]
    public async Task ReadFrameAsync_64BitLengthWithTopBitSet_RefusedWith1002(ulong length)
    {
        byte[] data = [0x82, 127, .. BigEndian64(length), 1, 2, 3];

        var refused = await RefusedAsync(data);

        Assert.Equal(1002, refused.CloseCode);
        Assert.Contains("most significant bit", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x7FFF_FFFF_FFFF_FFFFUL)]
    [InlineData(1UL << 40)]
    [InlineData((ulong)FrameReader.DefaultMaxPayload + 1)]
    public async Task ReadFrameAsync_64BitLengthBeyondTheMaximum_RefusedWith1009BeforeReadingThePayload(ulong length)
    {
        byte[] data = [0x82, 127, .. BigEndian64(length)]; // no payload follows: the reader must not try to read it

        var refused = await RefusedAsync(data);

        Assert.Equal(1009, refused.CloseCode);
        Assert.Contains(length.ToString(System.Globalization.CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadFrameAsync_16BitLengthBeyondASmallMaximum_RefusedWith1009()
    {
        var refused = await RefusedAsync([0x82, 126, .. BigEndian16(2000)], maxPayload: 1000);

        Assert.Equal(1009, refused.CloseCode);
    }

    [Fact]
    public async Task ReadFrameAsync_LengthEqualToTheMaximum_Accepted()
    {
        var reader = Reader(Frame(RawFrame.Binary, Payload(1000)), maxPayload: 1000);

        var frame = await reader.ReadFrameAsync(CancellationToken.None);

        Assert.Equal(1000, frame.Payload.Length);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x82 })] // half a header
    [InlineData(new byte[] { 0x82, 126, 0x01 })] // half a 16-bit length
    [InlineData(new byte[] { 0x82, 127, 0, 0, 0, 0, 0 })] // part of a 64-bit length
    [InlineData(new byte[] { 0x82, 0x85, 1, 2 })] // part of a mask
    [InlineData(new byte[] { 0x82, 5, 1, 2, 3 })] // part of a payload
    public async Task ReadFrameAsync_TruncatedInput_ThrowsEndOfStream(byte[] data)
    {
        var reader = Reader(data);

        await Assert.ThrowsAsync<EndOfStreamException>(() => reader.ReadFrameAsync(CancellationToken.None));
    }

    [Theory]
    [InlineData(RawFrame.Close)]
    [InlineData(RawFrame.Ping)]
    [InlineData(RawFrame.Pong)]
    public async Task ReadFrameAsync_FragmentedControlFrame_RefusedWith1002(byte opcode)
    {
        var refused = await RefusedAsync(Frame(opcode, [3, 232], fin: false));

        Assert.Equal(1002, refused.CloseCode);
        Assert.Contains("fragmented", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(RawFrame.Ping, 126, LengthForm.Sixteen)]
    [InlineData(RawFrame.Pong, 300, LengthForm.SixtyFour)]
    [InlineData(RawFrame.Close, 10, LengthForm.Sixteen)] // control frames must use the 7-bit form
    public async Task ReadFrameAsync_ControlFrameOver125BytesOrInALongForm_RefusedWith1002(byte opcode, int length, LengthForm form)
    {
        var refused = await RefusedAsync(Frame(opcode, Payload(length), form: form));

        Assert.Equal(1002, refused.CloseCode);
        Assert.Contains("at most 125 bytes", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadFrameAsync_ControlFrameOf125Bytes_Accepted()
    {
        var reader = Reader(Frame(RawFrame.Ping, Payload(125), masked: true));

        var frame = await reader.ReadFrameAsync(CancellationToken.None);

        Assert.Equal(Payload(125), frame.Payload);
    }

    [Fact]
    public async Task ReadFrameAsync_CloseFrameWithOneByte_RefusedWith1002()
    {
        var refused = await RefusedAsync(Frame(RawFrame.Close, [3]));

        Assert.Equal(1002, refused.CloseCode);
    }

    [Theory]
    [InlineData(0x3)]
    [InlineData(0x7)]
    [InlineData(0xB)]
    [InlineData(0xF)]
    public async Task ReadFrameAsync_ReservedOpcode_RefusedWith1002(byte opcode)
    {
        var refused = await RefusedAsync(Frame(opcode, [1]));

        Assert.Equal(1002, refused.CloseCode);
        Assert.Contains("reserved", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x40)]
    [InlineData(0x20)]
    [InlineData(0x10)]
    public async Task ReadFrameAsync_ReservedBitSet_RefusedWith1002(byte rsv)
    {
        var data = Frame(RawFrame.Text, "x"u8.ToArray());
        data[0] |= rsv;

        var refused = await RefusedAsync(data);

        Assert.Equal(1002, refused.CloseCode);
    }

    [Fact]
    public async Task ReadFrameAsync_ContinuationWithoutAStart_RefusedWith1002()
    {
        var refused = await RefusedAsync(Frame(RawFrame.Continuation, [1]));

        Assert.Equal(1002, refused.CloseCode);
    }

    [Fact]
    public async Task ReadFrameAsync_NewMessageBeforeTheLastFragment_RefusedWith1002()
    {
        var reader = Reader([.. Frame(RawFrame.Text, [65], fin: false), .. Frame(RawFrame.Text, [66])]);
        await reader.ReadFrameAsync(CancellationToken.None);

        var refused = await Assert.ThrowsAsync<FrameException>(() => reader.ReadFrameAsync(CancellationToken.None));

        Assert.Equal(1002, refused.CloseCode);
    }

    [Fact]
    public async Task ReadFrameAsync_FragmentedMessageWithAPingBetween_ReadsEveryFrame()
    {
        var reader = Reader([.. Frame(RawFrame.Text, [65], fin: false), .. Frame(RawFrame.Ping, [9]), .. Frame(RawFrame.Continuation, [66]), .. Frame(RawFrame.Text, [67])]);

        var frames = new List<RawFrame>();
        for (var i = 0; i < 4; i++)
        {
            frames.Add(await reader.ReadFrameAsync(CancellationToken.None));
        }

        Assert.Equal([RawFrame.Text, RawFrame.Ping, RawFrame.Continuation, RawFrame.Text], frames.Select(f => f.Opcode));
        Assert.Equal([false, true, true, true], frames.Select(f => f.Fin));
    }

    [Fact]
    public async Task ReadHeadAsync_HeadFollowedByAFrame_ReturnsTheHeadAndKeepsTheFrame()
    {
        byte[] data = [.. "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"u8, .. Frame(RawFrame.Text, "hi"u8.ToArray())];
        var reader = Reader(data, oneByteAtATime: true);

        var head = await reader.ReadHeadAsync(CancellationToken.None);
        var frame = await reader.ReadFrameAsync(CancellationToken.None);

        Assert.Equal("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket", head);
        Assert.Equal("hi"u8.ToArray(), frame.Payload);
    }

    [Fact]
    public async Task ReadHeadAsync_HeadLargerThanTheBuffer_ThrowsInvalidData()
    {
        var data = System.Text.Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nX: " + new string('a', FrameReader.BufferSize) + "\r\n\r\n");
        var reader = Reader(data);

        await Assert.ThrowsAsync<InvalidDataException>(() => reader.ReadHeadAsync(CancellationToken.None));
    }

    /// <summary>A stream that hands out one byte per read, as a slow network might.</summary>
    private sealed class TrickleStream(byte[] data) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(1, buffer.Length)], cancellationToken);
    }
}
