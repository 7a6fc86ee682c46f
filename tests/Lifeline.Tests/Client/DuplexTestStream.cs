namespace Lifeline.Tests.Client;

/// <summary>
/// What the fake connections under <see cref="Lifeline.Client.LinkStream"/> share: a two-way stream that cannot seek, whose
/// synchronous reads and writes are never used. Each fake overrides only the async reads and writes it plays.
/// </summary>
internal abstract class DuplexTestStream : Stream
{
    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
