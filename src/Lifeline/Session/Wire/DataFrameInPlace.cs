using System.Buffers;

namespace Lifeline.Session.Wire;

/// <summary>
/// A Data frame written from the replay buffer's own copy of its payload (<see cref="ReplayBuffer.TryAppendForWrite"/>):
/// the header goes in the room left in front of that copy, so the frame costs no copy of its own. When there was no
/// room (it would have cost the copy a twice bigger array), header and payload go into a rented array, given back by
/// <see cref="Return"/> once the frame is written or copied.
/// </summary>
internal readonly struct DataFrameInPlace
{
    private readonly byte[]? _rented;

    private DataFrameInPlace(ReadOnlyMemory<byte> bytes, byte[]? rented)
    {
        Bytes = bytes;
        _rented = rented;
    }

    /// <summary>The whole frame, header then payload.</summary>
    public ReadOnlyMemory<byte> Bytes { get; }

    /// <summary>
    /// Frames the payload that <see cref="ReplayBuffer.TryAppendForWrite"/> copied to <paramref name="offset"/> in
    /// <paramref name="buffer"/> (the lease it holds keeps that copy valid until the frame is written).
    /// </summary>
    public static DataFrameInPlace Build(byte[] buffer, int offset, int payloadLength, long sequence, long ack, bool isText)
    {
        Span<byte> header = stackalloc byte[SessionFrameWriter.MaxDataHeaderLength];
        SessionFrameWriter.TryWriteDataHeader(header, sequence, ack, isText, out var headerLength);
        if (offset >= headerLength)
        {
            header[..headerLength].CopyTo(buffer.AsSpan(offset - headerLength));
            return new DataFrameInPlace(buffer.AsMemory(offset - headerLength, headerLength + payloadLength), null);
        }

        var frame = ArrayPool<byte>.Shared.Rent(headerLength + payloadLength);
        header[..headerLength].CopyTo(frame);
        buffer.AsSpan(offset, payloadLength).CopyTo(frame.AsSpan(headerLength));
        return new DataFrameInPlace(frame.AsMemory(0, headerLength + payloadLength), frame);
    }

    /// <summary>Gives back the rented array, if the frame needed one. Call once.</summary>
    public void Return()
    {
        if (_rented is not null)
        {
            ArrayPool<byte>.Shared.Return(_rented);
        }
    }
}
