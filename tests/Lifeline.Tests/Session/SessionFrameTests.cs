using System.Buffers;
using Lifeline.CloseCodes;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.Tests.Session;

public class SessionFrameTests
{
    private const int Limit = 1024 * 1024;

    private static byte[] Write(Action<ArrayBufferWriter<byte>> write)
    {
        var writer = new ArrayBufferWriter<byte>();
        write(writer);
        return writer.WrittenSpan.ToArray();
    }

    private static SessionFrameHeader ReadOk(byte[] bytes)
    {
        Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(bytes, Limit, out var frame));
        return frame.Header;
    }

    private static ResumeToken SampleToken() => ResumeToken.FromBytes(Enumerable.Range(0x20, 32).Select(i => (byte)i).ToArray());

    private static SessionId SampleId() => SessionId.FromBytes(Enumerable.Range(0, 16).Select(i => (byte)i).ToArray());

    [Fact]
    public void WriteHello_NewSession_RoundTrips()
    {
        var header = ReadOk(Write(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));

        Assert.Equal(SessionFrameType.Hello, header.Type);
        Assert.Equal(new HelloFrame(1, false, default, default, 0), header.Hello);
    }

    [Fact]
    public void WriteHello_Resume_RoundTrips()
    {
        var token = ResumeToken.Create();
        var hello = HelloFrame.Resume(token.DeriveSessionId(), token, long.MaxValue);

        var header = ReadOk(Write(w => SessionFrameWriter.WriteHello(w, hello)));

        Assert.Equal(hello, header.Hello);
        Assert.True(header.Hello.ResumeToken == token);
    }

    [Fact]
    public void WriteWelcome_AllFields_RoundTrips()
    {
        var token = ResumeToken.Create();
        var welcome = new WelcomeFrame(1, token.DeriveSessionId(), token, TimeSpan.FromMinutes(2), 1 << 20, 10_000, 1L << 40);

        var header = ReadOk(Write(w => SessionFrameWriter.WriteWelcome(w, welcome)));

        Assert.Equal(SessionFrameType.Welcome, header.Type);
        Assert.Equal(welcome, header.Welcome);
    }

    [Fact]
    public void WriteResumed_RoundTrips()
    {
        var header = ReadOk(Write(w => SessionFrameWriter.WriteResumed(w, new ResumedFrame(123_456, 7))));

        Assert.Equal(new ResumedFrame(123_456, 7), header.Resumed);
    }

    [Theory]
    [InlineData(SessionLostReason.NotFound, 0L, 0L, 0L)]
    [InlineData(SessionLostReason.ReplayUnavailable, 17L, 5L, 5L)]
    [InlineData(SessionLostReason.BufferFull, long.MaxValue, long.MaxValue, 1L)]
    [InlineData(SessionLostReason.Expired, 1L, 1L, long.MaxValue)]
    public void WriteSessionLost_RoundTrips(SessionLostReason reason, long lastReceived, long first, long count)
    {
        var lost = new SessionLostFrame(reason, lastReceived, new SequenceRange(first, count));

        var header = ReadOk(Write(w => SessionFrameWriter.WriteSessionLost(w, lost)));

        Assert.Equal(lost, header.SessionLost);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(127L)]
    [InlineData(128L)]
    [InlineData(long.MaxValue)]
    public void WriteAck_RoundTrips(long ack)
    {
        var header = ReadOk(Write(w => SessionFrameWriter.WriteAck(w, ack)));

        Assert.Equal(SessionFrameType.Ack, header.Type);
        Assert.Equal(ack, header.Ack);
    }

    [Theory]
    [InlineData(false, 1L, 0L, 0)]
    [InlineData(true, 300L, 5L, 5)]
    [InlineData(false, long.MaxValue, long.MaxValue, 70_000)]
    public void WriteData_RoundTripsHeaderAndPayload(bool isText, long sequence, long ack, int size)
    {
        var payload = Enumerable.Range(0, size).Select(i => (byte)i).ToArray();

        var bytes = Write(w => SessionFrameWriter.WriteData(w, sequence, ack, isText, payload));

        Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(bytes, Limit, out var frame));
        Assert.Equal(SessionFrameType.Data, frame.Type);
        Assert.Equal(sequence, frame.Header.Sequence);
        Assert.Equal(ack, frame.Header.Ack);
        Assert.Equal(isText, frame.Header.IsText);
        Assert.True(frame.Payload.SequenceEqual(payload));
        Assert.Equal(bytes.Length - payload.Length, frame.Header.HeaderLength);
    }

    [Theory]
    [InlineData(false, 1L, 0L, 0)]
    [InlineData(true, 300L, 5L, 5)]
    [InlineData(false, long.MaxValue, long.MaxValue, 70_000)]
    public void TryReadData_DataFrame_GivesTheSameFieldsAsTryRead(bool isText, long sequence, long ack, int size)
    {
        var bytes = Write(w => SessionFrameWriter.WriteData(w, sequence, ack, isText, new byte[size]));
        var header = ReadOk(bytes);

        Assert.True(SessionFrameReader.TryReadData(bytes, Limit, out var readSequence, out var readAck, out var headerLength, out var readIsText));

        Assert.Equal((header.Sequence, header.Ack, header.HeaderLength, header.IsText), (readSequence, readAck, headerLength, readIsText));
    }

    [Theory]
    [InlineData(new byte[] { })] // empty
    [InlineData(new byte[] { 0x05, 0x03 })] // an Ack, not Data
    [InlineData(new byte[] { 0x08, 0x01, 0x00 })] // unknown type
    [InlineData(new byte[] { 0x06, 0x00, 0x00 })] // sequence 0
    [InlineData(new byte[] { 0x06, 0x01 })] // truncated: no ack
    [InlineData(new byte[] { 0x07, 0xFF, 0xFF })] // truncated varint
    [InlineData(new byte[] { 0x06, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 })] // ack above long.MaxValue
    public void TryReadData_AnythingButAWellFormedDataFrame_IsLeftToTryRead(byte[] bytes)
    {
        Assert.False(SessionFrameReader.TryReadData(bytes, Limit, out _, out _, out _, out _));

        var isDataFrameTryReadAccepts = SessionFrameReader.TryRead(bytes, Limit, out var frame) == SessionFrameError.None && frame.Type == SessionFrameType.Data;
        Assert.False(isDataFrameTryReadAccepts);
    }

    [Fact]
    public void TryReadData_OverTheLimit_IsLeftToTryRead()
    {
        var bytes = Write(w => SessionFrameWriter.WriteData(w, 1, 0, false, new byte[100]));

        Assert.False(SessionFrameReader.TryReadData(bytes, bytes.Length - 1, out _, out _, out _, out _));
        Assert.Equal(SessionFrameError.Oversized, SessionFrameReader.TryRead(bytes, bytes.Length - 1, out _));
    }

    [Fact]
    public void TryWriteDataHeader_FollowedByPayload_ReadsAsOneFrame()
    {
        Span<byte> header = stackalloc byte[SessionFrameWriter.MaxDataHeaderLength];
        Assert.True(SessionFrameWriter.TryWriteDataHeader(header, 42, 7, true, out var written));
        Assert.Equal(SessionFrameWriter.GetDataHeaderLength(42, 7), written);

        byte[] message = [.. header[..written], .. "hey"u8];

        Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(message, Limit, out var frame));
        Assert.Equal(42, frame.Header.Sequence);
        Assert.Equal("hey"u8.ToArray(), frame.Payload.ToArray());
    }

    [Fact]
    public void TryWriteDataHeader_TooSmallDestination_ReturnsFalse()
    {
        Assert.False(SessionFrameWriter.TryWriteDataHeader(new byte[2], 300, 0, false, out var written));
        Assert.Equal(0, written);
    }

    [Fact]
    public void TryRead_SegmentedSequence_ReadsHeaderAndPayload()
    {
        var bytes = Write(w => SessionFrameWriter.WriteData(w, 300, 5, false, new byte[500]));
        var sequence = Segments(bytes, 1, 2, 3);

        var error = SessionFrameReader.TryRead(sequence, Limit, out var header, out var payload);

        Assert.Equal(SessionFrameError.None, error);
        Assert.Equal(300, header.Sequence);
        Assert.Equal(5, header.Ack);
        Assert.Equal(500, payload.Length);
    }

    [Fact]
    public void TryRead_SegmentedWelcome_RoundTrips()
    {
        var token = ResumeToken.Create();
        var welcome = new WelcomeFrame(1, token.DeriveSessionId(), token, TimeSpan.FromSeconds(30), 4096, 100, 65_536);
        var bytes = Write(w => SessionFrameWriter.WriteWelcome(w, welcome));

        var error = SessionFrameReader.TryRead(Segments(bytes, 10, 20, 30), Limit, out var header, out var payload);

        Assert.Equal(SessionFrameError.None, error);
        Assert.Equal(welcome, header.Welcome);
        Assert.True(payload.IsEmpty);
    }

    [Fact]
    public void TryRead_SegmentedWithTrailingBytes_ReturnsTrailingBytes()
    {
        byte[] bytes = [.. Write(w => SessionFrameWriter.WriteAck(w, 1)), .. new byte[200]];

        Assert.Equal(SessionFrameError.TrailingBytes, SessionFrameReader.TryRead(Segments(bytes, 1, 100), Limit, out _, out _));
    }

    [Fact]
    public void TryRead_Empty_ReturnsEmpty()
    {
        Assert.Equal(SessionFrameError.Empty, SessionFrameReader.TryRead(ReadOnlySpan<byte>.Empty, Limit, out _));
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x08)]
    [InlineData(0x7B)] // '{': a JSON text sent by a peer that does not speak the protocol
    [InlineData(0xFF)]
    public void TryRead_UnknownType_ReturnsUnknownType(byte type)
    {
        Assert.Equal(SessionFrameError.UnknownType, SessionFrameReader.TryRead(new byte[] { type, 1, 2 }, Limit, out _));
    }

    [Theory]
    [InlineData(new byte[] { 0x05 })]
    [InlineData(new byte[] { 0x05, 0x80 })]
    [InlineData(new byte[] { 0x06, 0x01 })]
    [InlineData(new byte[] { 0x06, 0xFF, 0xFF })]
    [InlineData(new byte[] { 0x01, 0x01 })]
    [InlineData(new byte[] { 0x01, 0x01, 0x01, 0x00 })]
    public void TryRead_Truncated_ReturnsTruncated(byte[] bytes)
    {
        Assert.Equal(SessionFrameError.Truncated, SessionFrameReader.TryRead(bytes, Limit, out _));
    }

    [Fact]
    public void TryRead_VarintLongerThanTenBytes_ReturnsVarintOverflow()
    {
        byte[] bytes = [0x05, .. Enumerable.Repeat((byte)0x80, 10), 0x00];

        Assert.Equal(SessionFrameError.VarintOverflow, SessionFrameReader.TryRead(bytes, Limit, out _));
    }

    [Fact]
    public void TryRead_TenthVarintByteAboveBit63_ReturnsVarintOverflow()
    {
        byte[] bytes = [0x05, .. Enumerable.Repeat((byte)0xFF, 9), 0x02];

        Assert.Equal(SessionFrameError.VarintOverflow, SessionFrameReader.TryRead(bytes, Limit, out _));
    }

    [Fact]
    public void TryRead_AckAboveLongMaxValue_ReturnsValueOutOfRange()
    {
        byte[] bytes = [0x05, .. Enumerable.Repeat((byte)0xFF, 9), 0x01]; // 2^64 - 1

        Assert.Equal(SessionFrameError.ValueOutOfRange, SessionFrameReader.TryRead(bytes, Limit, out _));
    }

    [Fact]
    public void TryRead_NonMinimalVarint_IsAccepted()
    {
        Assert.Equal(3, ReadOk([0x05, 0x83, 0x80, 0x00]).Ack);
    }

    [Fact]
    public void TryRead_MessageOverLimit_ReturnsOversizedMappedTo1009()
    {
        var bytes = Write(w => SessionFrameWriter.WriteData(w, 1, 0, false, new byte[100]));

        var error = SessionFrameReader.TryRead(bytes, 100, out _);

        Assert.Equal(SessionFrameError.Oversized, error);
        Assert.Equal(CloseCode.MessageTooBig, error.ToCloseCode());
    }

    [Fact]
    public void TryRead_SegmentedOverLimit_ReturnsOversized()
    {
        Assert.Equal(SessionFrameError.Oversized, SessionFrameReader.TryRead(Segments(new byte[300], 100), 200, out _, out _));
    }

    [Theory]
    [InlineData(SessionFrameType.Hello)]
    [InlineData(SessionFrameType.Welcome)]
    [InlineData(SessionFrameType.Resumed)]
    [InlineData(SessionFrameType.SessionLost)]
    [InlineData(SessionFrameType.Ack)]
    public void TryRead_ControlFrameWithTrailingByte_ReturnsTrailingBytes(SessionFrameType type)
    {
        byte[] bytes = [.. ControlFrame(type), 0x00];

        Assert.Equal(SessionFrameError.TrailingBytes, SessionFrameReader.TryRead(bytes, Limit, out _));
    }

    [Theory]
    [InlineData(SessionFrameType.Hello)]
    [InlineData(SessionFrameType.Welcome)]
    [InlineData(SessionFrameType.Resumed)]
    [InlineData(SessionFrameType.SessionLost)]
    [InlineData(SessionFrameType.Ack)]
    public void TryRead_EveryShorterPrefixOfAControlFrame_ReturnsAnError(SessionFrameType type)
    {
        var bytes = ControlFrame(type);

        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.NotEqual(SessionFrameError.None, SessionFrameReader.TryRead(bytes.AsSpan(0, length), Limit, out _));
        }
    }

    [Fact]
    public void TryRead_DataSequenceZero_ReturnsInvalidField()
    {
        Assert.Equal(SessionFrameError.InvalidField, SessionFrameReader.TryRead(new byte[] { 0x06, 0x00, 0x00 }, Limit, out _));
    }

    [Theory]
    [InlineData(new byte[] { 0x01, 0x00, 0x00 })] // version 0
    [InlineData(new byte[] { 0x01, 0x01, 0x02 })] // resume mode 2
    [InlineData(new byte[] { 0x04, 0x00, 0x00, 0x00, 0x00 })] // reason 0
    [InlineData(new byte[] { 0x04, 0x01, 0x00, 0x05, 0x00 })] // empty lost range with a first sequence
    [InlineData(new byte[] { 0x04, 0x01, 0x00, 0x00, 0x03 })] // lost range starting at sequence 0
    public void TryRead_ForbiddenFieldValue_ReturnsInvalidField(byte[] bytes)
    {
        Assert.Equal(SessionFrameError.InvalidField, SessionFrameReader.TryRead(bytes, Limit, out _));
    }

    [Fact]
    public void TryRead_WelcomeWithZeroLimit_ReturnsInvalidField()
    {
        var bytes = Write(w => SessionFrameWriter.WriteWelcome(w, new WelcomeFrame(1, SampleId(), SampleToken(), TimeSpan.Zero, 1, 1, 1)));
        bytes[^1] = 0; // replay max bytes 0

        Assert.Equal(SessionFrameError.InvalidField, SessionFrameReader.TryRead(bytes, Limit, out _));
    }

    [Fact]
    public void TryRead_RandomInput_NeverThrows()
    {
        var random = new Random(1234);
        var buffer = new byte[64];
        for (var i = 0; i < 20_000; i++)
        {
            var length = random.Next(buffer.Length + 1);
            random.NextBytes(buffer);
            buffer[0] = (byte)random.Next(0, 9);
            var error = SessionFrameReader.TryRead(buffer.AsSpan(0, length), 48, out var frame);
            if (error == SessionFrameError.None)
            {
                _ = frame.Header.Type switch
                {
                    SessionFrameType.Hello => frame.Header.Hello.ToString(),
                    SessionFrameType.Welcome => frame.Header.Welcome.ToString(),
                    SessionFrameType.Resumed => frame.Header.Resumed.ToString(),
                    SessionFrameType.SessionLost => frame.Header.SessionLost.ToString(),
                    _ => frame.Header.Ack.ToString(System.Globalization.CultureInfo.InvariantCulture),
                };
            }
        }
    }

    [Fact]
    public void Hello_OnAnotherFrameType_ThrowsInvalidOperation()
    {
        var header = ReadOk(Write(w => SessionFrameWriter.WriteAck(w, 1)));

        Assert.Throws<InvalidOperationException>(() => header.Hello);
        Assert.Equal(0, header.Sequence);
    }

    [Fact]
    public void ToCloseCode_EveryError_Is1002Except1009ForOversized()
    {
        foreach (var error in Enum.GetValues<SessionFrameError>().Where(e => e != SessionFrameError.None))
        {
            var expected = error == SessionFrameError.Oversized ? 1009 : 1002;
            Assert.Equal(expected, error.ToCloseCode().Value);
            Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(error.Describe()), 1, 60);
        }
    }

    [Fact]
    public void WriteData_SequenceZero_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SessionFrameWriter.WriteData(new ArrayBufferWriter<byte>(), 0, 0, false, default));
    }

    // The examples of docs/protocol.md, byte for byte.
    [Fact]
    public void Write_SpecificationExamples_MatchTheDocumentedBytes()
    {
        Assert.Equal("010100", Hex(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        Assert.Equal("010101" + "000102030405060708090A0B0C0D0E0F" + "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F" + "2A",
            Hex(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(SampleId(), SampleToken(), 42))));
        Assert.Equal("0201" + "000102030405060708090A0B0C0D0E0F" + "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F" + "C0A907" + "808040" + "904E" + "808040",
            Hex(w => SessionFrameWriter.WriteWelcome(w, new WelcomeFrame(1, SampleId(), SampleToken(), TimeSpan.FromMinutes(2), 1 << 20, 10_000, 1 << 20))));
        Assert.Equal("032903", Hex(w => SessionFrameWriter.WriteResumed(w, new ResumedFrame(41, 3))));
        Assert.Equal("0401000000", Hex(w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(SessionLostReason.NotFound, 0, SequenceRange.Empty))));
        Assert.Equal("0402110505", Hex(w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(SessionLostReason.ReplayUnavailable, 17, new SequenceRange(5, 5)))));
        Assert.Equal("05AC02", Hex(w => SessionFrameWriter.WriteAck(w, 300)));
        Assert.Equal("0601006869", Hex(w => SessionFrameWriter.WriteData(w, 1, 0, false, "hi"u8)));
        Assert.Equal("07AC020568656C6C6F", Hex(w => SessionFrameWriter.WriteData(w, 300, 5, true, "hello"u8)));
    }

    private static string Hex(Action<ArrayBufferWriter<byte>> write) => Convert.ToHexString(Write(write));

    private static byte[] ControlFrame(SessionFrameType type) => type switch
    {
        SessionFrameType.Hello => Write(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(SampleId(), SampleToken(), 1000))),
        SessionFrameType.Welcome => Write(w => SessionFrameWriter.WriteWelcome(w, new WelcomeFrame(1, SampleId(), SampleToken(), TimeSpan.FromMinutes(2), 65_536, 1000, 1_000_000))),
        SessionFrameType.Resumed => Write(w => SessionFrameWriter.WriteResumed(w, new ResumedFrame(1000, 1000))),
        SessionFrameType.SessionLost => Write(w => SessionFrameWriter.WriteSessionLost(w, new SessionLostFrame(SessionLostReason.BufferFull, 1000, new SequenceRange(1000, 1000)))),
        _ => Write(w => SessionFrameWriter.WriteAck(w, 1000)),
    };

    internal static ReadOnlySequence<byte> Segments(byte[] bytes, params int[] cuts)
    {
        var first = new Segment(bytes.AsMemory(0, cuts[0]), 0);
        var last = first;
        var start = cuts[0];
        foreach (var cut in cuts.Skip(1).Append(bytes.Length))
        {
            var end = Math.Max(start, Math.Min(cut + start, bytes.Length));
            if (cut == bytes.Length)
            {
                end = bytes.Length;
            }

            last = last.Append(bytes.AsMemory(start, end - start));
            start = end;
        }

        if (start < bytes.Length)
        {
            last = last.Append(bytes.AsMemory(start));
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
