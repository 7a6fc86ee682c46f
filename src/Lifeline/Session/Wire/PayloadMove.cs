using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Lifeline.Session.Wire;

/// <summary>Moves a received frame's payload to the front of its buffer, in place of the frame's header.</summary>
internal static class PayloadMove
{
    // Up to this many bytes the move is done here; above it the runtime's memmove, whose fixed cost no longer matters.
    private const int ManagedUpTo = 512;

    /// <summary>
    /// Moves <paramref name="length"/> bytes at <paramref name="from"/> to the start of <paramref name="buffer"/>.
    /// </summary>
    /// <remarks>
    /// The two ranges overlap whenever the payload is longer than the header, and an overlapping
    /// <see cref="Span{T}.CopyTo(Span{T})"/> calls the native memmove through a GC transition: for a small message that
    /// costs more than the copy (a few percent of receiving a 32-byte session message). Copying forward, eight bytes at
    /// a time, is safe for a move towards the start: each chunk is read before anything is written over it.
    /// </remarks>
    public static void ToFront(Span<byte> buffer, int from, int length)
    {
        if ((uint)from > (uint)buffer.Length || (uint)length > (uint)(buffer.Length - from))
        {
            throw new ArgumentOutOfRangeException((uint)from > (uint)buffer.Length ? nameof(from) : nameof(length), "The payload lies outside the buffer.");
        }

        if (length > ManagedUpTo)
        {
            buffer.Slice(from, length).CopyTo(buffer);
            return;
        }

        ref var start = ref MemoryMarshal.GetReference(buffer);
        var i = 0;
        for (; i + sizeof(ulong) <= length; i += sizeof(ulong))
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref start, i), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, from + i)));
        }

        for (; i < length; i++)
        {
            Unsafe.Add(ref start, i) = Unsafe.Add(ref start, from + i);
        }
    }
}
