using System.Buffers;

namespace Lifeline.Session.Wire;

/// <summary>
/// Encodes <c>lifeline.v1</c> frames into an <see cref="IBufferWriter{T}"/> (one frame = one binary WebSocket message).
/// Allocates nothing. Invalid arguments (a negative sequence, a zero limit) are programming errors and throw
/// <see cref="ArgumentOutOfRangeException"/>.
/// </summary>
/// <remarks>Stateless and thread-safe.</remarks>
public static class SessionFrameWriter
{
    /// <summary>The longest Data header: type byte and two 64-bit varints (21 bytes).</summary>
    public const int MaxDataHeaderLength = 1 + (2 * Varint.MaxLength);

    /// <summary>Writes a Hello frame.</summary>
    public static void WriteHello(IBufferWriter<byte> writer, in HelloFrame hello)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentOutOfRangeException.ThrowIfLessThan(hello.Version, 1, nameof(hello));
        var span = writer.GetSpan(SessionFrameReader.MaxHeaderLength);
        span[0] = (byte)SessionFrameType.Hello;
        var n = 1 + Varint.Write(span[1..], (ulong)hello.Version);
        if (!hello.IsResume)
        {
            span[n++] = 0;
        }
        else
        {
            ArgumentOutOfRangeException.ThrowIfNegative(hello.LastReceived, nameof(hello));
            span[n++] = 1;
            hello.SessionId.WriteTo(span[n..]);
            n += SessionId.Length;
            hello.ResumeToken.WriteTo(span[n..]);
            n += ResumeToken.Length;
            n += Varint.Write(span[n..], (ulong)hello.LastReceived);
        }

        writer.Advance(n);
    }

    /// <summary>Writes a Welcome frame.</summary>
    public static void WriteWelcome(IBufferWriter<byte> writer, in WelcomeFrame welcome)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentOutOfRangeException.ThrowIfLessThan(welcome.Version, 1, nameof(welcome));
        ArgumentOutOfRangeException.ThrowIfLessThan(welcome.MaxFrameBytes, 1, nameof(welcome));
        ArgumentOutOfRangeException.ThrowIfLessThan(welcome.ReplayMaxMessages, 1, nameof(welcome));
        ArgumentOutOfRangeException.ThrowIfLessThan(welcome.ReplayMaxBytes, 1L, nameof(welcome));
        var windowMs = (long)welcome.ResumeWindow.TotalMilliseconds;
        if (windowMs is < 0 or > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(welcome), welcome.ResumeWindow, "The resume window must be 0 to 2^32-1 milliseconds.");
        }

        var span = writer.GetSpan(SessionFrameReader.MaxHeaderLength);
        span[0] = (byte)SessionFrameType.Welcome;
        var n = 1 + Varint.Write(span[1..], (ulong)welcome.Version);
        welcome.SessionId.WriteTo(span[n..]);
        n += SessionId.Length;
        welcome.ResumeToken.WriteTo(span[n..]);
        n += ResumeToken.Length;
        n += Varint.Write(span[n..], (ulong)windowMs);
        n += Varint.Write(span[n..], (ulong)welcome.MaxFrameBytes);
        n += Varint.Write(span[n..], (ulong)welcome.ReplayMaxMessages);
        n += Varint.Write(span[n..], (ulong)welcome.ReplayMaxBytes);
        writer.Advance(n);
    }

    /// <summary>Writes a Resumed frame.</summary>
    public static void WriteResumed(IBufferWriter<byte> writer, in ResumedFrame resumed)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentOutOfRangeException.ThrowIfNegative(resumed.LastReceived, nameof(resumed));
        ArgumentOutOfRangeException.ThrowIfNegative(resumed.ReplayCount, nameof(resumed));
        var span = writer.GetSpan(1 + (2 * Varint.MaxLength));
        span[0] = (byte)SessionFrameType.Resumed;
        var n = 1 + Varint.Write(span[1..], (ulong)resumed.LastReceived);
        n += Varint.Write(span[n..], (ulong)resumed.ReplayCount);
        writer.Advance(n);
    }

    /// <summary>Writes a SessionLost frame.</summary>
    public static void WriteSessionLost(IBufferWriter<byte> writer, in SessionLostFrame lost)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (lost.Reason == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(lost), lost.Reason, "A SessionLost frame needs a reason.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(lost.LastReceived, nameof(lost));
        if (!lost.Lost.IsEmpty && lost.Lost.First == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(lost), lost.Lost, "Sequence numbers start at 1.");
        }

        var span = writer.GetSpan(2 + (3 * Varint.MaxLength));
        span[0] = (byte)SessionFrameType.SessionLost;
        span[1] = (byte)lost.Reason;
        var n = 2 + Varint.Write(span[2..], (ulong)lost.LastReceived);
        n += Varint.Write(span[n..], (ulong)lost.Lost.First);
        n += Varint.Write(span[n..], (ulong)lost.Lost.Count);
        writer.Advance(n);
    }

    /// <summary>Writes an Ack frame carrying the cumulative acknowledgement <paramref name="ack"/>.</summary>
    public static void WriteAck(IBufferWriter<byte> writer, long ack)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentOutOfRangeException.ThrowIfNegative(ack);
        var span = writer.GetSpan(1 + Varint.MaxLength);
        span[0] = (byte)SessionFrameType.Ack;
        writer.Advance(1 + Varint.Write(span[1..], (ulong)ack));
    }

    /// <summary>Writes a whole Data frame: header and a copy of <paramref name="payload"/>.</summary>
    public static void WriteData(IBufferWriter<byte> writer, long sequence, long ack, bool isText, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var span = writer.GetSpan(MaxDataHeaderLength + payload.Length);
        var n = WriteDataHeader(span, sequence, ack, isText);
        payload.CopyTo(span[n..]);
        writer.Advance(n + payload.Length);
    }

    /// <summary>
    /// Writes only a Data header, for a sender that sends the payload from its own buffer as the rest of the same
    /// WebSocket message (no copy). <paramref name="destination"/> needs <see cref="GetDataHeaderLength"/> bytes
    /// (at most <see cref="MaxDataHeaderLength"/>).
    /// </summary>
    public static bool TryWriteDataHeader(Span<byte> destination, long sequence, long ack, bool isText, out int written)
    {
        written = 0;
        if (destination.Length < GetDataHeaderLength(sequence, ack))
        {
            return false;
        }

        written = WriteDataHeader(destination, sequence, ack, isText);
        return true;
    }

    /// <summary>The length of a Data header for these numbers.</summary>
    public static int GetDataHeaderLength(long sequence, long ack)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1L);
        ArgumentOutOfRangeException.ThrowIfNegative(ack);
        return 1 + Varint.GetLength((ulong)sequence) + Varint.GetLength((ulong)ack);
    }

    private static int WriteDataHeader(Span<byte> span, long sequence, long ack, bool isText)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1L);
        ArgumentOutOfRangeException.ThrowIfNegative(ack);
        span[0] = isText ? SessionFrameReader.DataTextByte : SessionFrameReader.DataBinaryByte;
        var n = 1 + Varint.Write(span[1..], (ulong)sequence);
        return n + Varint.Write(span[n..], (ulong)ack);
    }
}
