using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Lifeline.Diagnostics.Raw;

/// <summary>
/// Reads an HTTP response head and then WebSocket frames from one stream through one buffer, so bytes that arrive
/// with the head are not lost. Every frame is checked against the framing rules of RFC 6455 section 5 before its
/// payload is read: a length is never trusted beyond <see cref="MaxPayload"/>, and a 64-bit length with its most
/// significant bit set is refused rather than cast.
/// </summary>
/// <remarks>Not thread-safe: one reader loop at a time.</remarks>
internal sealed class FrameReader
{
    /// <summary>The largest payload accepted by default: 64 MiB.</summary>
    public const int DefaultMaxPayload = 64 * 1024 * 1024;

    /// <summary>The size of the read buffer, which also bounds the HTTP response head: 64 KiB.</summary>
    public const int BufferSize = 64 * 1024;

    private const int MaxControlPayload = 125;

    private readonly Stream _stream;
    private readonly byte[] _buffer = new byte[BufferSize];
    private readonly bool _fromServer;
    private int _start;
    private int _end;
    private bool _inFragmentedMessage;

    /// <param name="stream">What to read frames from.</param>
    /// <param name="maxPayload">The largest frame payload accepted.</param>
    /// <param name="fromServer">The frames come from a server, which must never mask them (RFC 6455 5.1): a masked one is refused.</param>
    public FrameReader(Stream stream, int maxPayload = DefaultMaxPayload, bool fromServer = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(maxPayload);
        _stream = stream;
        MaxPayload = maxPayload;
        _fromServer = fromServer;
    }

    /// <summary>The largest frame payload accepted; a longer one is refused with 1009.</summary>
    public int MaxPayload { get; }

    /// <summary>Bytes read from the stream and not consumed yet.</summary>
    public int Buffered => _end - _start;

    /// <summary>
    /// Reads up to the blank line that ends an HTTP head and returns the head without it. Throws
    /// <see cref="EndOfStreamException"/> if the stream ends first and <see cref="InvalidDataException"/> if the head
    /// does not fit the buffer.
    /// </summary>
    public async Task<string> ReadHeadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var end = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                var head = Encoding.ASCII.GetString(_buffer, _start, end);
                _start += end + 4;
                return head;
            }

            if (_start == 0 && _end == _buffer.Length)
            {
                throw new InvalidDataException("the upgrade response headers are larger than 64 KiB");
            }

            await FillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The first <paramref name="maxBytes"/> buffered bytes as UTF-8, without consuming them.</summary>
    public string PeekText(int maxBytes) => Encoding.UTF8.GetString(_buffer, _start, Math.Min(_end - _start, maxBytes));

    /// <summary>Reads more bytes into the buffer; <see cref="EndOfStreamException"/> when the stream has ended.</summary>
    public async Task FillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        var read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            throw new EndOfStreamException("the peer closed the TCP connection");
        }

        _end += read;
    }

    /// <summary>
    /// Reads the next frame and unmasks its payload. Throws <see cref="EndOfStreamException"/> when the stream ends
    /// (before or inside a frame), <see cref="FrameException"/> when the frame breaks the rules, and whatever the
    /// stream throws (an IOException on a reset).
    /// </summary>
    public async Task<RawFrame> ReadFrameAsync(CancellationToken cancellationToken)
    {
        var header = await ReadExactlyAsync(2, cancellationToken).ConfigureAwait(false);
        var fin = (header[0] & 0x80) != 0;
        var opcode = (byte)(header[0] & 0x0F);
        var masked = (header[1] & 0x80) != 0;
        if (masked && _fromServer)
        {
            throw new FrameException("the server masked a frame, which RFC 6455 forbids (5.1); a client fails the connection");
        }

        var length7 = header[1] & 0x7F;
        CheckHeader(header[0], opcode, fin, length7);

        ulong length = (ulong)length7;
        if (length7 == 126)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(await ReadExactlyAsync(2, cancellationToken).ConfigureAwait(false));
        }
        else if (length7 == 127)
        {
            length = BinaryPrimitives.ReadUInt64BigEndian(await ReadExactlyAsync(8, cancellationToken).ConfigureAwait(false));
            if ((length & (1UL << 63)) != 0)
            {
                throw new FrameException("the 64-bit payload length has its most significant bit set, which RFC 6455 forbids");
            }
        }

        if (length > (ulong)MaxPayload)
        {
            throw new FrameException(FrameException.MessageTooBig, string.Create(CultureInfo.InvariantCulture,
                $"a frame of {length} bytes is larger than the diagnostics accept ({MaxPayload})"));
        }

        var mask = masked ? await ReadExactlyAsync(4, cancellationToken).ConfigureAwait(false) : null;
        var payload = await ReadExactlyAsync((int)length, cancellationToken).ConfigureAwait(false);
        if (mask is not null)
        {
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= mask[i % 4];
            }
        }

        if (opcode == RawFrame.Close && payload.Length == 1)
        {
            throw new FrameException("a Close frame carries either no payload or a two-byte code, never one byte");
        }

        if (opcode == RawFrame.Close && payload.Length >= 2)
        {
            // What a client such as .NET's ClientWebSocket or a browser does with it: fail the connection, so the probe
            // reports what they would see rather than the code the server meant.
            var code = BinaryPrimitives.ReadUInt16BigEndian(payload);
            if (!MayBeSent(code))
            {
                throw new FrameException(string.Create(CultureInfo.InvariantCulture,
                    $"the Close frame carries code {code}, which no endpoint may send (RFC 6455 7.4: only 1000-1003, 1007-1014 and 3000-4999)"));
            }

            if (!System.Text.Unicode.Utf8.IsValid(payload.AsSpan(2)))
            {
                throw new FrameException(FrameException.InvalidPayload, "the Close frame's reason is not valid UTF-8");
            }
        }

        if (opcode is RawFrame.Text or RawFrame.Binary or RawFrame.Continuation)
        {
            _inFragmentedMessage = !fin;
        }

        return new RawFrame(opcode, fin, payload);
    }

    private void CheckHeader(byte first, byte opcode, bool fin, int length7)
    {
        if ((first & 0x70) != 0)
        {
            throw new FrameException("a reserved bit (RSV1-3) is set, but no extension was negotiated");
        }

        switch (opcode)
        {
            case RawFrame.Continuation when !_inFragmentedMessage:
                throw new FrameException("a continuation frame arrived with no fragmented message to continue");
            case RawFrame.Text or RawFrame.Binary when _inFragmentedMessage:
                throw new FrameException("a new data frame arrived before the fragmented message was finished");
            case RawFrame.Close or RawFrame.Ping or RawFrame.Pong when !fin:
                throw new FrameException("a control frame must not be fragmented");
            case RawFrame.Close or RawFrame.Ping or RawFrame.Pong when length7 > MaxControlPayload:
                throw new FrameException("a control frame carries at most 125 bytes");
            case RawFrame.Continuation or RawFrame.Text or RawFrame.Binary or RawFrame.Close or RawFrame.Ping or RawFrame.Pong:
                return;
            default:
                throw new FrameException(string.Create(CultureInfo.InvariantCulture, $"opcode 0x{opcode:X} is reserved"));
        }
    }

    private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var result = new byte[count];
        var copied = 0;
        while (copied < count)
        {
            if (_start == _end)
            {
                await FillAsync(cancellationToken).ConfigureAwait(false);
            }

            var take = Math.Min(count - copied, _end - _start);
            Buffer.BlockCopy(_buffer, _start, result, copied, take);
            _start += take;
            copied += take;
        }

        return result;
    }

    /// <summary>The close codes an endpoint may put on the wire (RFC 6455 7.4 and the IANA registry).</summary>
    private static bool MayBeSent(int code) => code is (>= 1000 and <= 1003) or (>= 1007 and <= 1014) or (>= 3000 and <= 4999);
}
