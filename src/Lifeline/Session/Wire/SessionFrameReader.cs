using System.Buffers;

namespace Lifeline.Session.Wire;

/// <summary>
/// Decodes one <c>lifeline.v1</c> frame (one whole WebSocket message). Never throws for malformed input: it returns a
/// <see cref="SessionFrameError"/> the caller turns into a close code (<see cref="SessionFrameErrorExtensions.ToCloseCode"/>)
/// and a log line (<see cref="SessionFrameErrorExtensions.Describe"/>). Allocates nothing.
/// </summary>
/// <remarks>Stateless and thread-safe.</remarks>
public static class SessionFrameReader
{
    /// <summary>The longest header any frame type has (a Welcome with every varint at its longest): 99 bytes.</summary>
    public const int MaxHeaderLength = 1 + Varint.MaxLength + SessionId.Length + ResumeToken.Length + (4 * Varint.MaxLength);

    internal const byte DataBinaryByte = 0x06;
    internal const byte DataTextByte = 0x07;

    /// <summary>Reads a frame from a contiguous buffer.</summary>
    /// <param name="message">The whole WebSocket message.</param>
    /// <param name="maxFrameBytes">The receiver's limit on a whole frame; longer input gives <see cref="SessionFrameError.Oversized"/>.</param>
    /// <param name="frame">The frame when the result is <see cref="SessionFrameError.None"/>.</param>
    public static SessionFrameError TryRead(ReadOnlySpan<byte> message, int maxFrameBytes, out SessionFrame frame)
    {
        frame = default;
        var error = TryReadHeader(message, message.Length, maxFrameBytes, out var header);
        if (error != SessionFrameError.None)
        {
            return error;
        }

        frame = new SessionFrame(header, header.Type == SessionFrameType.Data ? message[header.HeaderLength..] : default);
        return SessionFrameError.None;
    }

    /// <summary>Reads a frame from a possibly segmented buffer (as a pipe or a pooled message assembler gives it).</summary>
    /// <param name="message">The whole WebSocket message.</param>
    /// <param name="maxFrameBytes">The receiver's limit on a whole frame.</param>
    /// <param name="header">The decoded fields when the result is <see cref="SessionFrameError.None"/>.</param>
    /// <param name="payload">Data: the payload, a slice of <paramref name="message"/>. Empty for other types.</param>
    public static SessionFrameError TryRead(in ReadOnlySequence<byte> message, int maxFrameBytes, out SessionFrameHeader header, out ReadOnlySequence<byte> payload)
    {
        payload = default;
        SessionFrameError error;
        if (message.IsSingleSegment)
        {
            error = TryReadHeader(message.FirstSpan, message.Length, maxFrameBytes, out header);
        }
        else
        {
            // No well-formed header is longer than MaxHeaderLength, so a copied prefix of that size is enough to decode it.
            Span<byte> head = stackalloc byte[MaxHeaderLength];
            var length = (int)Math.Min(message.Length, MaxHeaderLength);
            message.Slice(0, length).CopyTo(head);
            error = TryReadHeader(head[..length], message.Length, maxFrameBytes, out header);
        }

        if (error == SessionFrameError.None && header.Type == SessionFrameType.Data)
        {
            payload = message.Slice(header.HeaderLength);
        }

        return error;
    }

    /// <summary>
    /// The per-message fast path: decodes a Data frame's fields into scalars. <see cref="SessionFrameHeader"/> is large
    /// (it holds every frame type's fields), and copying it costs more than decoding a Data header. False when
    /// <paramref name="message"/> is not a well-formed Data frame within <paramref name="maxFrameBytes"/>: the caller
    /// then decodes it with <see cref="TryRead(ReadOnlySpan{byte}, int, out SessionFrame)"/>, which says what it is or
    /// what is wrong with it.
    /// </summary>
    internal static bool TryReadData(ReadOnlySpan<byte> message, int maxFrameBytes, out long sequence, out long ack, out int headerLength, out bool isText)
    {
        sequence = 0;
        ack = 0;
        headerLength = 0;
        isText = false;
        if (message.IsEmpty || message.Length > maxFrameBytes || (message[0] != DataBinaryByte && message[0] != DataTextByte))
        {
            return false;
        }

        var reader = new FieldReader(message[1..]);
        if (reader.Sequence(out sequence) != SessionFrameError.None || sequence == 0 || reader.Sequence(out ack) != SessionFrameError.None)
        {
            sequence = 0;
            return false;
        }

        headerLength = 1 + reader.Position;
        isText = message[0] == DataTextByte;
        return true;
    }

    /// <summary>Decodes the header from <paramref name="head"/>, a prefix (or all) of a message <paramref name="totalLength"/> bytes long.</summary>
    private static SessionFrameError TryReadHeader(ReadOnlySpan<byte> head, long totalLength, int maxFrameBytes, out SessionFrameHeader header)
    {
        header = default;
        if (totalLength == 0)
        {
            return SessionFrameError.Empty;
        }

        if (totalLength > maxFrameBytes)
        {
            return SessionFrameError.Oversized;
        }

        var reader = new FieldReader(head[1..]);
        SessionFrameError error;
        switch (head[0])
        {
            case (byte)SessionFrameType.Hello:
                error = ReadHello(ref reader, out header);
                break;
            case (byte)SessionFrameType.Welcome:
                error = ReadWelcome(ref reader, out header);
                break;
            case (byte)SessionFrameType.Resumed:
                if ((error = reader.Sequence(out var lastReceived)) == SessionFrameError.None
                    && (error = reader.Sequence(out var replayCount)) == SessionFrameError.None)
                {
                    header = new SessionFrameHeader(SessionFrameType.Resumed, 1 + reader.Position, 0, lastReceived, replayCount);
                }

                break;
            case (byte)SessionFrameType.SessionLost:
                error = ReadSessionLost(ref reader, out header);
                break;
            case (byte)SessionFrameType.Ack:
                if ((error = reader.Sequence(out var ack)) == SessionFrameError.None)
                {
                    header = new SessionFrameHeader(SessionFrameType.Ack, 1 + reader.Position, 0, 0, ack);
                }

                break;
            case DataBinaryByte:
            case DataTextByte:
                if ((error = reader.Sequence(out var sequence)) == SessionFrameError.None
                    && (error = reader.Sequence(out var dataAck)) == SessionFrameError.None)
                {
                    if (sequence == 0)
                    {
                        return SessionFrameError.InvalidField;
                    }

                    header = new SessionFrameHeader(SessionFrameType.Data, 1 + reader.Position, head[0] == DataTextByte ? (byte)1 : (byte)0, sequence, dataAck);
                }

                return error; // the rest of the message is the payload
            default:
                return SessionFrameError.UnknownType;
        }

        if (error != SessionFrameError.None)
        {
            return error;
        }

        if (header.HeaderLength != totalLength)
        {
            header = default;
            return SessionFrameError.TrailingBytes;
        }

        return SessionFrameError.None;
    }

    private static SessionFrameError ReadHello(ref FieldReader reader, out SessionFrameHeader header)
    {
        header = default;
        SessionFrameError error;
        if ((error = reader.Version(out var version)) != SessionFrameError.None
            || (error = reader.Byte(out var mode)) != SessionFrameError.None)
        {
            return error;
        }

        if (mode == 0)
        {
            header = new SessionFrameHeader(SessionFrameType.Hello, 1 + reader.Position, 0, version, 0);
            return SessionFrameError.None;
        }

        if (mode != 1)
        {
            return SessionFrameError.InvalidField;
        }

        if ((error = reader.Bytes(SessionId.Length, out var id)) != SessionFrameError.None
            || (error = reader.Bytes(ResumeToken.Length, out var token)) != SessionFrameError.None
            || (error = reader.Sequence(out var lastReceived)) != SessionFrameError.None)
        {
            return error;
        }

        header = new SessionFrameHeader(SessionFrameType.Hello, 1 + reader.Position, 1, version, lastReceived,
            sessionId: SessionId.FromBytes(id), token: ResumeToken.FromBytes(token));
        return SessionFrameError.None;
    }

    private static SessionFrameError ReadWelcome(ref FieldReader reader, out SessionFrameHeader header)
    {
        header = default;
        SessionFrameError error;
        if ((error = reader.Version(out var version)) != SessionFrameError.None
            || (error = reader.Bytes(SessionId.Length, out var id)) != SessionFrameError.None
            || (error = reader.Bytes(ResumeToken.Length, out var token)) != SessionFrameError.None
            || (error = reader.Bounded(uint.MaxValue, out var windowMs)) != SessionFrameError.None
            || (error = reader.Bounded(int.MaxValue, out var maxFrame)) != SessionFrameError.None
            || (error = reader.Bounded(int.MaxValue, out var replayMessages)) != SessionFrameError.None
            || (error = reader.Sequence(out var replayBytes)) != SessionFrameError.None)
        {
            return error;
        }

        if (maxFrame == 0 || replayMessages == 0 || replayBytes == 0)
        {
            return SessionFrameError.InvalidField;
        }

        header = new SessionFrameHeader(SessionFrameType.Welcome, 1 + reader.Position, 0, version, windowMs, maxFrame, replayMessages, replayBytes,
            SessionId.FromBytes(id), ResumeToken.FromBytes(token));
        return SessionFrameError.None;
    }

    private static SessionFrameError ReadSessionLost(ref FieldReader reader, out SessionFrameHeader header)
    {
        header = default;
        SessionFrameError error;
        if ((error = reader.Byte(out var reason)) != SessionFrameError.None
            || (error = reader.Sequence(out var lastReceived)) != SessionFrameError.None
            || (error = reader.Sequence(out var lostFirst)) != SessionFrameError.None
            || (error = reader.Sequence(out var lostCount)) != SessionFrameError.None)
        {
            return error;
        }

        if (reason == 0 || (lostCount == 0 && lostFirst != 0) || (lostCount > 0 && (lostFirst == 0 || lostFirst > long.MaxValue - lostCount + 1)))
        {
            return SessionFrameError.InvalidField;
        }

        header = new SessionFrameHeader(SessionFrameType.SessionLost, 1 + reader.Position, reason, lastReceived, lostFirst, lostCount);
        return SessionFrameError.None;
    }

    private ref struct FieldReader
    {
        private readonly ReadOnlySpan<byte> _source;

        public FieldReader(ReadOnlySpan<byte> source) => _source = source;

        public int Position { get; private set; }

        public SessionFrameError Byte(out byte value)
        {
            if (Position >= _source.Length)
            {
                value = 0;
                return SessionFrameError.Truncated;
            }

            value = _source[Position++];
            return SessionFrameError.None;
        }

        public SessionFrameError Bytes(int length, out ReadOnlySpan<byte> value)
        {
            if (_source.Length - Position < length)
            {
                value = default;
                return SessionFrameError.Truncated;
            }

            value = _source.Slice(Position, length);
            Position += length;
            return SessionFrameError.None;
        }

        /// <summary>A varint that must fit a non-negative <see cref="long"/> (sequences, acks, counts).</summary>
        public SessionFrameError Sequence(out long value) => Bounded(long.MaxValue, out value);

        public SessionFrameError Version(out long value)
        {
            var error = Bounded(int.MaxValue, out value);
            return error == SessionFrameError.None && value == 0 ? SessionFrameError.InvalidField : error;
        }

        public SessionFrameError Bounded(ulong max, out long value)
        {
            value = 0;
            var error = Varint.TryRead(_source[Position..], out var raw, out var consumed);
            if (error != SessionFrameError.None)
            {
                return error;
            }

            if (raw > max)
            {
                return SessionFrameError.ValueOutOfRange;
            }

            Position += consumed;
            value = (long)raw;
            return SessionFrameError.None;
        }
    }
}
