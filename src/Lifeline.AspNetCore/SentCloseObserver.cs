using Microsoft.AspNetCore.Http.Features;

namespace Lifeline.AspNetCore;

/// <summary>
/// Watches the bytes the server's WebSocket writes and remembers the code of the Close frame it sent, whoever sent it:
/// our own CloseAsync, or the runtime's WebSocket failing the connection (1002 for a protocol error, 1007 for invalid
/// UTF-8), which only throws and does not say which code went out.
/// </summary>
/// <remarks>
/// Fed by one writer at a time (the WebSocket serialises its writes); the result is read from any thread. It is also the
/// upgrade feature that puts it in place (one object per connection, and no entry in the request's feature list).
/// </remarks>
internal sealed class SentCloseObserver(IHttpUpgradeFeature inner) : IHttpUpgradeFeature
{
    // The header being read: server frames are not masked, so 2 bytes and at most 8 of extended length.
    private byte _header0;
    private byte _header1;
    private long _extendedLength;
    private int _headerLength;
    private long _payloadLeft;
    private bool _inClose;
    private int _closeBytesSeen;
    private int _closeCode;
    private int _sentCode = -1;

    /// <summary>The code of the first Close frame written, 0 when it had none, null when none was written.</summary>
    public int? SentCode => Volatile.Read(ref _sentCode) is var code && code >= 0 ? code : null;

    public void OnWritten(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty && Volatile.Read(ref _sentCode) < 0)
        {
            if (_payloadLeft > 0)
            {
                var take = (int)Math.Min(_payloadLeft, data.Length);
                if (_inClose)
                {
                    for (var i = 0; i < take && _closeBytesSeen < 2; i++, _closeBytesSeen++)
                    {
                        _closeCode = (_closeCode << 8) | data[i];
                    }
                }

                data = data[take..];
                _payloadLeft -= take;
                if (_payloadLeft == 0 && _inClose)
                {
                    Volatile.Write(ref _sentCode, _closeBytesSeen >= 2 ? _closeCode : 0);
                }

                continue;
            }

            var next = data[0];
            data = data[1..];
            switch (++_headerLength)
            {
                case 1:
                    _header0 = next;
                    continue;
                case 2:
                    _header1 = next;
                    break;
                default:
                    _extendedLength = (_extendedLength << 8) | next;
                    break;
            }

            var lengthByte = _header1 & 0x7F;
            var needed = 2 + (lengthByte == 126 ? 2 : lengthByte == 127 ? 8 : 0);
            if (_headerLength < needed)
            {
                continue;
            }

            long length = lengthByte >= 126 ? _extendedLength : lengthByte;
            _inClose = (_header0 & 0x0F) == 0x8;
            _headerLength = 0;
            _extendedLength = 0;
            _payloadLeft = length;
            _closeBytesSeen = 0;
            _closeCode = 0;
            if (length == 0 && _inClose)
            {
                Volatile.Write(ref _sentCode, 0);
            }
        }
    }

    public bool IsUpgradableRequest => inner.IsUpgradableRequest;

    /// <summary>Wraps the upgrade so that the stream handed to the WebSocket reports what it writes here.</summary>
    public async Task<Stream> UpgradeAsync() => new ObservedStream(await inner.UpgradeAsync().ConfigureAwait(false), this);

    private sealed class ObservedStream(Stream inner, SentCloseObserver observer) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            observer.OnWritten(buffer.AsSpan(offset, count));
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            observer.OnWritten(buffer.Span);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
