using System.Buffers;
using System.Runtime.CompilerServices;

namespace Lifeline.Client;

/// <summary>
/// The connection's byte stream, under ClientWebSocket, for Lifeline's keep-alive: it counts the reads (any frame from the
/// server, the Pong included, makes ClientWebSocket read again, and proves the link alive) and writes a Ping frame between the socket's own
/// frames when asked. Lifeline pings here instead of through the runtime's KeepAliveTimeout, which stamps the clock on
/// every message received: about a tenth of what receiving a small message costs.
/// </summary>
/// <remarks>
/// ClientWebSocket writes one frame per write and never two writes at once. A ping is written either by the pinger,
/// when the socket is not writing, or by the socket's writer right after its current frame. The two decide with plain
/// volatile flags on the writer's side and a process-wide barrier on the pinger's (rare) side, so a write costs no
/// interlocked operation.
/// </remarks>
internal sealed partial class LinkStream(Stream inner, bool framed = false) : Stream
{
    // FIN + Ping, masked (a client's frames must be), empty payload; any mask key will do.
    private static readonly byte[] PingFrame = [0x89, 0x80, 0x4C, 0x49, 0x46, 0x45];

    // Written by the one reader ClientWebSocket allows at a time. Ints that may wrap: the keep-alive only asks whether
    // _reads moved, and two ints take the room of the one long _reads was.
    private int _reads; // reads started, and messages taken from the buffer
    private int _taken; // messages taken from the buffer without a pass through ClientWebSocket
    private volatile bool _socketWriting;
    private volatile bool _pingWriting;
    private volatile bool _closeSent;
    private bool _writeFailed; // a write of the socket's failed: nothing is gathered after it (see WriteToLink)
    private int _pingWanted;
    private int _pinging; // someone is deciding about, or writing, a ping
    private TaskCompletionSource? _pingWritten;
    private int _readsAtLastWrite = -1; // _reads when the socket last wrote: unchanged at its next write means it streams
    private WriteBehind? _writeBehind; // made when the socket first streams (see WriteToLink)
    private int _writeProgress; // pieces of large frames written so far (see WriteInPiecesAsync)

    // A frame larger than this is written in pieces of this size, so that a write that takes long shows its progress:
    // one piece in KeepAliveTimeout (15 s by default) is about 4 KiB/s, below the slowest link worth talking over.
    private const int ProgressPiece = 64 * 1024;

    /// <summary>How many reads were started so far, and messages taken from the buffer: each one after the first means data arrived.</summary>
    public int Reads => Volatile.Read(ref _reads);

    /// <summary>How many messages <see cref="TryReadMessage"/> took so far: how often the direct path ran.</summary>
    public int MessagesTaken => Volatile.Read(ref _taken);

    /// <summary>
    /// Moves while a large frame is being written and the connection takes its bytes: a write the kernel keeps taking
    /// (the peer acknowledges what went before) is a live link, even when it holds a ping back longer than the timeout.
    /// </summary>
    public int WriteProgress => Volatile.Read(ref _writeProgress);

    /// <summary>Whether a ping was asked for and not written yet.</summary>
    public bool PingPending => Volatile.Read(ref _pingWanted) != 0;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Asks for a Ping: written now if the socket is not writing, else right after its current frame. Never after a Close.</summary>
    public void RequestPing()
    {
        Volatile.Write(ref _pingWanted, 1);
        TryWritePing();
    }

    /// <summary>
    /// Writes the wanted ping unless the socket is inside a write (its writer then writes it after its frame) or another
    /// ping is under way. Only one caller at a time gets to decide (<c>_pinging</c>).
    /// </summary>
    private void TryWritePing()
    {
        while (Interlocked.CompareExchange(ref _pinging, 1, 0) == 0)
        {
            var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _pingWritten, written);
            _pingWriting = true;
            Interlocked.MemoryBarrierProcessWide(); // pairs with the writer's plain store then load (see WriteAsync)
            if (!_socketWriting && !_closeSent && Interlocked.Exchange(ref _pingWanted, 0) != 0)
            {
                _ = WritePingAsync(written);
                return;
            }

            _pingWriting = false;
            Interlocked.Exchange(ref _pinging, 0); // a full fence: the checks below see a writer that finished meanwhile
            written.TrySetResult();

            // Handed to the socket's writer, which checks for a wanted ping after its frame. If it finished its frame
            // while this caller held the turn, its own attempt found the turn taken: try again for it.
            if (_socketWriting || _closeSent || Volatile.Read(ref _pingWanted) == 0)
            {
                return;
            }
        }
    }

    private async Task WritePingAsync(TaskCompletionSource written)
    {
        try
        {
            await WriteToLink(PingFrame, socketFrame: false, CancellationToken.None).ConfigureAwait(false);
            await FlushAsync(CancellationToken.None).ConfigureAwait(false); // HTTP/2 sends buffered data only on a flush
        }
#pragma warning disable CA1031 // A failed ping means a failing link: the reads (or their absence) tell the monitor.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            _pingWriting = false;
            Volatile.Write(ref _pinging, 0);
            written.TrySetResult();
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        framed ? ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult() : Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!framed)
        {
            _reads++;
            return inner.Read(buffer);
        }

        var array = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var count = Read(array, 0, buffer.Length);
            array.AsSpan(0, count).CopyTo(buffer);
            return count;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // A plain store, then a plain load: the pinger's process-wide barrier makes sure that at least one of the two
        // sides sees the other's flag, so a ping and a frame are never written at once.
        _socketWriting = true;
        if (_pingWriting)
        {
            _socketWriting = false;
            return WriteAfterPingAsync(buffer, cancellationToken);
        }

        if (!buffer.IsEmpty && (buffer.Span[0] & 0x0F) == 0x08)
        {
            _closeSent = true; // no Ping after a Close frame
        }

        ValueTask write;
        try
        {
            write = WriteToLink(buffer, socketFrame: true, cancellationToken);
        }
        catch
        {
            _writeFailed = true;
            _socketWriting = false;
            throw;
        }

        if (write.IsCompletedSuccessfully && Volatile.Read(ref _pingWanted) == 0)
        {
            write.GetAwaiter().GetResult();
            EndWrite();
            return default;
        }

        return FinishWriteAsync(write);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // every write that waits: no box per write
    private async ValueTask FinishWriteAsync(ValueTask write)
    {
        try
        {
            try
            {
                await write.ConfigureAwait(false);
            }
            catch
            {
                _writeFailed = true;
                throw;
            }

            if (!_closeSent && Interlocked.Exchange(ref _pingWanted, 0) != 0)
            {
                await WritePingAfterFrameAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            EndWrite();
        }
    }

    // Not with the send's token, and never failing the send: its frame is written (or gathered) already, and a send
    // reported failed would be sent again. A link that broke shows in the reads.
    private async ValueTask WritePingAfterFrameAsync()
    {
        try
        {
            await WriteToLink(PingFrame, socketFrame: false, CancellationToken.None).ConfigureAwait(false); // ClientWebSocket flushes after its write
        }
#pragma warning disable CA1031 // see above
        catch (Exception)
#pragma warning restore CA1031
        {
            _writeFailed = true;
        }
    }

    /// <summary>
    /// Writes a frame to the connection. When the socket streams (it writes again and nothing was read since, as a
    /// sender in a loop does) over HTTP/1.1, its frames go through <see cref="WriteBehind"/>, which gathers them into
    /// few writes; an answer to something just read, a Ping and the Close are written at once, behind anything
    /// gathered, and the Close only completes once written. Over HTTP/2 everything is written at once.
    /// </summary>
    private ValueTask WriteToLink(ReadOnlyMemory<byte> frame, bool socketFrame, CancellationToken cancellationToken)
    {
        var streams = false;
        if (socketFrame)
        {
            var reads = _reads; // the reader's counter; a stale value only decides one write the other way
            // After a failed write nothing is gathered: the connection's own write then says at once whether it still
            // takes bytes, so a message sent to a link already known broken fails, and is kept for the next one.
            streams = framed && reads == _readsAtLastWrite && !_closeSent && !_writeFailed;
            _readsAtLastWrite = reads;
            if (frame.Length > ProgressPiece)
            {
                return WriteInPiecesAsync(frame, cancellationToken);
            }
        }

        return WriteOnce(frame, streams, cancellationToken);
    }

    /// <summary>
    /// A large frame, in pieces written one after the other (at once, behind anything gathered), each counted in
    /// <see cref="WriteProgress"/>: on a slow link the keep-alive sees the write move instead of a ping held back.
    /// </summary>
    private async ValueTask WriteInPiecesAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        for (var offset = 0; offset < frame.Length; offset += ProgressPiece)
        {
            await WriteOnce(frame.Slice(offset, Math.Min(ProgressPiece, frame.Length - offset)), streams: false, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _writeProgress);
        }
    }

    private ValueTask WriteOnce(ReadOnlyMemory<byte> frame, bool streams, CancellationToken cancellationToken)
    {
        var behind = _writeBehind;
        if (behind is null)
        {
            if (!streams)
            {
                return inner.WriteAsync(frame, cancellationToken);
            }

            _writeBehind = behind = new WriteBehind(inner) { HoldForTest = HoldWritesForTest };
        }

        return behind.WriteAsync(frame, mayWait: streams, untilWritten: _closeSent, cancellationToken);
    }

    /// <summary>Tests: the link's write-behind, once the socket streamed.</summary>
    internal WriteBehind? WriteBehind => _writeBehind;

    /// <summary>Tests: given to the write-behind when it is made (see <see cref="Client.WriteBehind.HoldForTest"/>).</summary>
    internal Task? HoldWritesForTest { get; set; }

    // A plain store, then a plain load, like the start of a write: a ping asked for while the socket was finishing this
    // write is written now rather than left for the monitor's next look.
    private void EndWrite()
    {
        _socketWriting = false;
        if (Volatile.Read(ref _pingWanted) != 0)
        {
            TryWritePing();
        }
    }

    private async ValueTask WriteAfterPingAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _pingWritten) is { } written)
        {
            await written.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        await WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    // ClientWebSocket flushes after every write. Over HTTP/1.1 the upgraded connection writes without a buffer of its
    // own, so there is nothing to flush, and the write-behind's worker may be writing to it right now: not passed on.
    public override void Flush()
    {
        if (!framed)
        {
            inner.Flush();
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => framed ? Task.CompletedTask : inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _disposed = true; // the buffer is not returned: a reader may be taking a message from it right now
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
