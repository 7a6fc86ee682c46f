using System.Buffers;
using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text.Unicode;

namespace Lifeline.Client;

/// <summary>
/// The read side. Passed through as is, unless the connection is an HTTP/1.1 upgrade (see <see cref="UpgradeCapture"/>):
/// then reads from the connection go into a pooled buffer, and ClientWebSocket is given the bytes of one WebSocket
/// frame at a time, never past a frame's end. Because of that, whenever ClientWebSocket has handed a whole message to
/// the application it holds no byte of the next frame, and a reader may take the whole data frames that are already
/// buffered itself (<see cref="TryReadMessage"/>): a small message then costs a header check and a copy instead of a
/// pass through ClientWebSocket's receive. Anything else (control frames, fragments, reserved bits, masked frames,
/// text that is not valid UTF-8, a message larger than the caller's memory, an error, the end of the stream) is left
/// to ClientWebSocket, which reads the same bytes and reacts as it always does.
/// </summary>
/// <remarks>
/// No buffer is held while the connection is idle: once the buffer is empty it goes back to the pool, and after a
/// read that found the connection drained the next one is made into ClientWebSocket's own memory (its header buffer,
/// there anyway); only what arrives past the end of that frame is then kept here. Filling a buffer of ours is for
/// when data keeps coming.
/// ClientWebSocket reads one at a time, and a reader takes buffered frames only while it owns the receive side, so
/// the buffer has one user at a time; it is never returned on dispose (an abort may come from another thread).
/// </remarks>
internal sealed partial class LinkStream
{
    private const int BufferSize = 64 * 1024; // held only while it has bytes; 16 KiB made 4 KiB messages straddle reads more often
    private const int SmallBuffer = 1024; // for what followed a frame in a read into ClientWebSocket's memory: see KeepWhatFollowsTheFrame
    private const int LongestHeader = 10; // a server's frames are not masked: 2 bytes, 8 more for a 64-bit length

    // The rest of a frame at least this large is read straight into ClientWebSocket's memory, and a smaller rest
    // through the buffer (it is on its way: the sender is inside that frame). Asked for less than its own 4 KiB buffer,
    // the HTTP connection's stream fills that buffer and then hands it out in pieces of at most 4 KiB: every later 4 KiB
    // frame then straddled two of our reads and went through ClientWebSocket (14 to 874 of 100,000 taken directly).
    // Asked for room in ours, it reads the socket at once.
    private const int DirectReadMin = BufferSize / 4;

    private byte[]? _buffer;
    private int _start;
    private int _end;
    private long _frameLeft; // bytes of the frame at _start not given to ClientWebSocket yet; 0 at a frame's start
    private bool _drained = true; // the next read from the connection will likely wait: see where it is set
    private bool _socketAtBoundary = true; // ClientWebSocket holds no byte it read: see MarkMessageEnded
    private volatile bool _disposed;

    /// <summary>Whether reads are frame by frame (an HTTP/1.1 upgrade), so that <see cref="TryReadMessage"/> can take messages.</summary>
    public bool Framed => framed;

    /// <summary>Tests: whether a pooled buffer is held (never while the connection is idle).</summary>
    internal bool HoldsBuffer => _buffer is not null;

    /// <summary>Tests: the length of the pooled buffer held; 0 when none is.</summary>
    internal int BufferLength => _buffer?.Length ?? 0;

    /// <summary>
    /// The caller just had a whole message from ClientWebSocket (a result with EndOfMessage): everything it read is
    /// handed out, so buffered frames after it may be taken by <see cref="TryReadMessage"/>. Any read by
    /// ClientWebSocket clears this again.
    /// </summary>
    public void MarkMessageEnded() => _socketAtBoundary = true;

    /// <summary>
    /// Takes the next message when it is one whole, unfragmented, unmasked text or binary frame that is already
    /// buffered and fits in <paramref name="destination"/> (and <paramref name="maxLength"/>); text must be valid
    /// UTF-8. False leaves everything as it was: read through ClientWebSocket then. Only for the reader that owns the
    /// socket's receive side, between ClientWebSocket's reads.
    /// </summary>
    public bool TryReadMessage(Span<byte> destination, int maxLength, out int length, out WebSocketMessageType type)
    {
        length = 0;
        type = WebSocketMessageType.Binary;
        var available = _end - _start;
        if (!_socketAtBoundary || _frameLeft != 0 || available < 2 || _disposed)
        {
            return false;
        }

        var frame = _buffer.AsSpan(_start, available);
        var first = frame[0];
        var opcode = first & 0x0F;
        // FIN set, no reserved bit, not masked, Text (1) or Binary (2).
        if ((first & 0xF0) != 0x80 || (frame[1] & 0x80) != 0 || (uint)(opcode - 1) > 1)
        {
            return false;
        }

        if (!TryReadHeader(frame, out var header, out var payload)
            || payload > destination.Length || payload > maxLength || payload > available - header)
        {
            return false;
        }

        var body = frame.Slice(header, (int)payload);
        if (opcode == 1 && !Utf8.IsValid(body))
        {
            return false; // ClientWebSocket reads it and closes with 1007
        }

        body.CopyTo(destination);
        _start += header + (int)payload;
        _reads++; // a message taken counts as a read for the keep-alive, as ClientWebSocket's reads of it would have
        _taken++;
        if (_start == _end)
        {
            ReturnBuffer();
        }

        length = (int)payload;
        type = opcode == 1 ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
        return true;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!framed)
        {
            _reads++;
            return inner.ReadAsync(buffer, cancellationToken);
        }

        _socketAtBoundary = false;
        if (_end > _start)
        {
            if (buffer.IsEmpty)
            {
                return new ValueTask<int>(0); // a zero-byte read: data is there
            }

            if (_frameLeft > 0 || TryStartFrame())
            {
                _reads++;
                return new ValueTask<int>(GiveFromBuffer(buffer.Span));
            }
        }
        else if (buffer.IsEmpty)
        {
            _reads++;
            return inner.ReadAsync(buffer, cancellationToken);
        }

        return ReadFramedAsync(buffer, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // a read that waits (every round trip of a request/response) allocates nothing
    private async ValueTask<int> ReadFramedAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_end > _start)
            {
                if (_frameLeft > 0 || TryStartFrame())
                {
                    return GiveFromBuffer(destination.Span);
                }

                // A header split between two reads: read the rest of it after what is buffered.
            }
            else if (_frameLeft >= DirectReadMin)
            {
                // Inside a large frame with nothing buffered: straight into ClientWebSocket's memory, up to the frame's end.
                _reads++;
                var direct = await inner.ReadAsync(destination[..(int)Math.Min(destination.Length, _frameLeft)], cancellationToken).ConfigureAwait(false);
                _frameLeft -= direct;
                if (_frameLeft == 0)
                {
                    _drained = true; // nothing says more is coming: the next frame's start waits in ClientWebSocket's memory
                }

                return direct;
            }
            else if (_drained && _frameLeft == 0)
            {
                // A frame's start, nothing buffered, and the last read emptied the connection: this read will likely
                // wait. It waits in ClientWebSocket's memory (its header buffer) rather than in a buffer of ours, so an
                // idle connection holds nothing more, and what arrives past the frame's end is kept here.
                _reads++;
                var asked = Math.Min(destination.Length, BufferSize);
                var reading = inner.ReadAsync(destination[..asked], cancellationToken);
                var waited = !reading.IsCompleted;
                var read = await reading.ConfigureAwait(false);
                if (read == 0)
                {
                    return 0;
                }

                var given = KeepWhatFollowsTheFrame(destination.Span[..read]);

                // Data keeps coming if the read was full and either went past the frame's end or found its bytes
                // already there. A full read that waited and ended inside its frame (a larger reply on a quiet link)
                // says nothing about what follows: the rest of that frame is waited for without a buffer of ours
                // (below), and the next frame's start waits here again.
                _drained = read < asked || (given == read && waited);
                if (given > 0)
                {
                    return given;
                }

                continue; // the header is not complete: it is all in the buffer now, read the rest after it
            }

            if (_buffer is null && _frameLeft > 0 && _drained)
            {
                // Inside a frame on a link that went quiet: wait for the rest with a zero-byte read, so a sender stalled
                // inside a frame (or a link that died there) keeps no buffer of ours; then read it into one.
                _reads++;
                _ = await inner.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            }

            if (_buffer is null)
            {
                _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            }
            else if (_buffer.Length < BufferSize)
            {
                // A small buffer kept what followed a frame, and now data keeps coming: read into a full one.
                var full = ArrayPool<byte>.Shared.Rent(BufferSize);
                _buffer.AsSpan(_start, _end - _start).CopyTo(full);
                ArrayPool<byte>.Shared.Return(_buffer);
                (_buffer, _start, _end) = (full, 0, _end - _start);
            }
            else if (_start > 0)
            {
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                (_start, _end) = (0, _end - _start);
            }

            _reads++;
            var room = _buffer.Length - _end;
            var filled = await inner.ReadAsync(_buffer.AsMemory(_end, room), cancellationToken).ConfigureAwait(false);
            _drained = filled < room;
            if (filled == 0)
            {
                if (_end == _start)
                {
                    ReturnBuffer();
                    return 0;
                }

                _frameLeft = _end - _start; // the stream ended inside a header: hand over what is left, then the end
                return GiveFromBuffer(destination.Span);
            }

            _end += filled;
        }
    }

    /// <summary>
    /// Bytes just read into ClientWebSocket's memory at a frame's start: how many of them it may have (no more than
    /// that frame); the rest is kept in the buffer. 0 when the frame's header is not complete: then all of them are in
    /// the buffer, to be handed over once it is.
    /// </summary>
    private int KeepWhatFollowsTheFrame(ReadOnlySpan<byte> read)
    {
        var frameLength = FrameLength(read);
        if (frameLength >= read.Length)
        {
            _frameLeft = frameLength - read.Length;
            return read.Length;
        }

        // What followed is usually a frame or two that came with it (a resume's answer and a replayed message): kept in
        // a buffer its size, not a 64 KiB one. A process with thousands of clients that all reconnect at once would
        // otherwise take 64 KiB from the pool for each, far more than it keeps, and allocate the rest. A buffer for
        // reading into is taken if data keeps coming (above).
        var given = frameLength < 0 ? 0 : (int)frameLength;
        _buffer ??= ArrayPool<byte>.Shared.Rent(Math.Max(SmallBuffer, read.Length - given));
        read[given..].CopyTo(_buffer);
        (_start, _end) = (0, read.Length - given);
        return given;
    }

    /// <summary>Reads the header of the frame at <c>_start</c>, if it is all buffered, to know where the frame ends.</summary>
    private bool TryStartFrame()
    {
        var length = FrameLength(_buffer.AsSpan(_start, _end - _start));
        if (length < 0)
        {
            return false;
        }

        _frameLeft = length;
        return true;
    }

    /// <summary>The length of the frame that starts <paramref name="bytes"/>, header included; -1 when its header is not all there.</summary>
    private static long FrameLength(ReadOnlySpan<byte> bytes) => TryReadHeader(bytes, out var header, out var payload) ? header + payload : -1;

    /// <summary>
    /// The header of the frame that starts <paramref name="bytes"/>: its length (a mask key included) and the payload's
    /// length. False when the header is not all there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // on the per-message path of TryReadMessage
    private static bool TryReadHeader(ReadOnlySpan<byte> bytes, out int header, out long payload)
    {
        header = 0;
        payload = 0;
        if (bytes.Length < 2)
        {
            return false;
        }

        var length = bytes[1] & 0x7F;
        header = 2 + (length == 126 ? 2 : length == 127 ? 8 : 0) + ((bytes[1] & 0x80) != 0 ? 4 : 0);
        if (bytes.Length < header)
        {
            return false;
        }

        // A length ClientWebSocket refuses (the top bit set) still only has to end where the stream does.
        payload = length switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(bytes[2..]),
            127 => (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(bytes[2..]), long.MaxValue - LongestHeader - 4),
            _ => length,
        };
        return true;
    }

    private int GiveFromBuffer(Span<byte> destination)
    {
        var count = (int)Math.Min(Math.Min(destination.Length, _end - _start), _frameLeft);
        _buffer.AsSpan(_start, count).CopyTo(destination);
        _start += count;
        _frameLeft -= count;
        if (_start == _end)
        {
            ReturnBuffer();
        }

        return count;
    }

    private void ReturnBuffer()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            (_start, _end) = (0, 0);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
