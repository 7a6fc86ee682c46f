using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Lifeline.Session.Wire;

namespace Lifeline.Session.Store;

/// <summary>
/// The versioned binary form of a <see cref="SessionSnapshot"/>, shared by every store (file, Redis).
/// Reading never throws on bad input: it returns false with a reason.
/// </summary>
/// <remarks>
/// Layout (version 1): version byte; session id (16); token hash (32); created and expires as little-endian int64
/// Unix milliseconds; user id (flag byte, then a string); next outbound sequence, outbound acknowledged and last
/// inbound delivered (varints); unacknowledged messages (count, then each: sequence varint, flags byte with bit 0 =
/// text, length varint, bytes); groups (count, strings); state (count, key and value strings). A string is a varint
/// byte length and UTF-8. Stateless and thread-safe.
/// </remarks>
public static class SessionSnapshotSerializer
{
    /// <summary>The format version written.</summary>
    public const byte FormatVersion = 1;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes a snapshot.</summary>
    /// <exception cref="ArgumentException">The snapshot is inconsistent (<see cref="SessionSnapshot.Validate"/>).</exception>
    public static void Write(IBufferWriter<byte> writer, SessionSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Validate() is { } problem)
        {
            throw new ArgumentException($"The snapshot of session {snapshot.Id} is inconsistent: {problem}.", nameof(snapshot));
        }

        var span = writer.GetSpan(1 + SessionId.Length + ResumeTokenHash.Length + 16 + 1);
        span[0] = FormatVersion;
        snapshot.Id.WriteTo(span[1..]);
        snapshot.TokenHash.WriteTo(span[17..]);
        BinaryPrimitives.WriteInt64LittleEndian(span[49..], snapshot.CreatedAt.ToUnixTimeMilliseconds());
        BinaryPrimitives.WriteInt64LittleEndian(span[57..], snapshot.ExpiresAt.ToUnixTimeMilliseconds());
        span[65] = snapshot.UserId is null ? (byte)0 : (byte)1;
        writer.Advance(66);
        if (snapshot.UserId is not null)
        {
            WriteString(writer, snapshot.UserId);
        }

        WriteVarint(writer, snapshot.NextOutboundSequence);
        WriteVarint(writer, snapshot.OutboundAcknowledged);
        WriteVarint(writer, snapshot.LastInboundDelivered);
        WriteVarint(writer, snapshot.Unacknowledged.Count);
        foreach (var message in snapshot.Unacknowledged)
        {
            WriteVarint(writer, message.Sequence);
            writer.GetSpan(1)[0] = message.IsText ? (byte)1 : (byte)0;
            writer.Advance(1);
            WriteVarint(writer, message.Payload.Length);
            writer.Write(message.Payload.Span);
        }

        WriteVarint(writer, snapshot.Groups.Count);
        foreach (var group in snapshot.Groups)
        {
            WriteString(writer, group);
        }

        WriteVarint(writer, snapshot.State.Count);
        foreach (var (key, value) in snapshot.State)
        {
            WriteString(writer, key);
            WriteString(writer, value);
        }
    }

    /// <summary>Reads a snapshot; never throws on bad input.</summary>
    /// <param name="data">Exactly one serialised snapshot.</param>
    /// <param name="snapshot">The snapshot on success.</param>
    /// <param name="error">Why the data could not be read, on failure.</param>
    public static bool TryRead(ReadOnlySpan<byte> data, out SessionSnapshot? snapshot, out string? error)
    {
        snapshot = null;
        var reader = new Reader(data);
        if (!reader.Byte(out var version))
        {
            error = "empty";
            return false;
        }

        if (version != FormatVersion)
        {
            error = $"unsupported format version {version}";
            return false;
        }

        if (!reader.Bytes(SessionId.Length, out var id) || !reader.Bytes(ResumeTokenHash.Length, out var hash)
            || !reader.Int64(out var created) || !reader.Int64(out var expires) || !reader.Byte(out var hasUser))
        {
            error = "truncated header";
            return false;
        }

        string? userId = null;
        if (hasUser > 1 || (hasUser == 1 && !reader.String(out userId)))
        {
            error = "invalid user id";
            return false;
        }

        if (!reader.Varint(out var next) || !reader.Varint(out var acked) || !reader.Varint(out var inbound) || !reader.Count(out var messageCount))
        {
            error = "invalid cursors";
            return false;
        }

        var messages = new SessionMessage[messageCount];
        for (var i = 0; i < messages.Length; i++)
        {
            if (!reader.Varint(out var sequence) || !reader.Byte(out var flags) || flags > 1 || !reader.Count(out var length) || !reader.Bytes(length, out var payload))
            {
                error = $"invalid message {i}";
                return false;
            }

            messages[i] = new SessionMessage(sequence, flags == 1, payload.ToArray());
        }

        if (!reader.Count(out var groupCount))
        {
            error = "invalid group count";
            return false;
        }

        var groups = new string[groupCount];
        for (var i = 0; i < groups.Length; i++)
        {
            if (!reader.String(out groups[i]!))
            {
                error = $"invalid group {i}";
                return false;
            }
        }

        if (!reader.Count(out var stateCount))
        {
            error = "invalid state count";
            return false;
        }

        var state = new Dictionary<string, string>(stateCount, StringComparer.Ordinal);
        for (var i = 0; i < stateCount; i++)
        {
            if (!reader.String(out var key) || !reader.String(out var value) || !state.TryAdd(key, value))
            {
                error = $"invalid state entry {i}";
                return false;
            }
        }

        if (!reader.AtEnd)
        {
            error = "trailing bytes";
            return false;
        }

        if (created is < -62_135_596_800_000 or > 253_402_300_799_999 || expires is < -62_135_596_800_000 or > 253_402_300_799_999)
        {
            error = "time out of range";
            return false;
        }

        var result = new SessionSnapshot
        {
            Id = SessionId.FromBytes(id),
            TokenHash = ResumeTokenHash.FromBytes(hash),
            UserId = userId,
            CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(created),
            ExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(expires),
            NextOutboundSequence = next,
            OutboundAcknowledged = acked,
            LastInboundDelivered = inbound,
            Unacknowledged = messages,
            Groups = groups,
            State = state,
        };
        error = result.Validate();
        if (error is not null)
        {
            return false;
        }

        snapshot = result;
        return true;
    }

    private static void WriteVarint(IBufferWriter<byte> writer, long value) =>
        writer.Advance(Varint.Write(writer.GetSpan(Varint.MaxLength), (ulong)value));

    private static void WriteString(IBufferWriter<byte> writer, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarint(writer, length);
        var span = writer.GetSpan(length);
        writer.Advance(Encoding.UTF8.GetBytes(value, span));
    }

    private ref struct Reader
    {
        private readonly ReadOnlySpan<byte> _data;
        private int _position;

        public Reader(ReadOnlySpan<byte> data) => _data = data;

        public readonly bool AtEnd => _position == _data.Length;

        public bool Byte(out byte value)
        {
            value = 0;
            if (_position >= _data.Length)
            {
                return false;
            }

            value = _data[_position++];
            return true;
        }

        public bool Bytes(int length, out ReadOnlySpan<byte> value)
        {
            value = default;
            if (length < 0 || _data.Length - _position < length)
            {
                return false;
            }

            value = _data.Slice(_position, length);
            _position += length;
            return true;
        }

        public bool Int64(out long value)
        {
            value = 0;
            if (!Bytes(8, out var bytes))
            {
                return false;
            }

            value = BinaryPrimitives.ReadInt64LittleEndian(bytes);
            return true;
        }

        public bool Varint(out long value)
        {
            value = 0;
            if (Wire.Varint.TryRead(_data[_position..], out var raw, out var consumed) != SessionFrameError.None || raw > long.MaxValue)
            {
                return false;
            }

            _position += consumed;
            value = (long)raw;
            return true;
        }

        /// <summary>A count or length: never more than the bytes left, so corrupt input cannot cause a huge allocation.</summary>
        public bool Count(out int value)
        {
            value = 0;
            if (!Varint(out var raw) || raw > _data.Length - _position)
            {
                return false;
            }

            value = (int)raw;
            return true;
        }

        public bool String(out string value)
        {
            value = string.Empty;
            if (!Count(out var length) || !Bytes(length, out var bytes))
            {
                return false;
            }

            try
            {
                value = StrictUtf8.GetString(bytes);
                return true;
            }
            catch (DecoderFallbackException)
            {
                return false;
            }
        }
    }
}
