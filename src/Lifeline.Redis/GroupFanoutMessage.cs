using System.Buffers.Binary;
using System.Text;

namespace Lifeline.Redis;

/// <summary>A group send or broadcast published by one node for the members on the others.</summary>
/// <param name="Group">The group; null for a broadcast to every connection.</param>
/// <param name="Payload">The application's message.</param>
/// <param name="IsText">Whether the payload is UTF-8 text.</param>
/// <param name="OriginNodeId">The node that published it.</param>
public sealed record GroupFanoutMessage(string? Group, ReadOnlyMemory<byte> Payload, bool IsText, string OriginNodeId)
{
    private const byte Version = 1;

    /// <summary>Whether this is a broadcast (no group).</summary>
    public bool IsBroadcast => Group is null;

    // Layout: version (1); flags (1: bit 0 text, bit 1 broadcast); origin length (2, big-endian) and UTF-8;
    // group length (2) and UTF-8 (empty for a broadcast); payload (the rest).
    internal byte[] Encode()
    {
        var origin = Encoding.UTF8.GetBytes(OriginNodeId);
        var group = Group is null ? [] : Encoding.UTF8.GetBytes(Group);
        if (origin.Length > ushort.MaxValue || group.Length > ushort.MaxValue)
        {
            throw new ArgumentException("A group name and a node id are at most 65,535 bytes of UTF-8.");
        }

        var bytes = new byte[6 + origin.Length + group.Length + Payload.Length];
        bytes[0] = Version;
        bytes[1] = (byte)((IsText ? 1 : 0) | (Group is null ? 2 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)origin.Length);
        origin.CopyTo(bytes, 4);
        var at = 4 + origin.Length;
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(at), (ushort)group.Length);
        group.CopyTo(bytes, at + 2);
        Payload.Span.CopyTo(bytes.AsSpan(at + 2 + group.Length));
        return bytes;
    }

    internal static GroupFanoutMessage? TryDecode(byte[]? bytes)
    {
        if (bytes is null || bytes.Length < 6 || bytes[0] != Version || bytes[1] > 3)
        {
            return null;
        }

        try
        {
            var originLength = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(2));
            if (bytes.Length < 6 + originLength)
            {
                return null;
            }

            var origin = Encoding.UTF8.GetString(bytes, 4, originLength);
            var at = 4 + originLength;
            var groupLength = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at));
            if (bytes.Length < at + 2 + groupLength)
            {
                return null;
            }

            var broadcast = (bytes[1] & 2) != 0;
            var group = broadcast ? null : Encoding.UTF8.GetString(bytes, at + 2, groupLength);
            return new GroupFanoutMessage(group, bytes.AsMemory(at + 2 + groupLength), (bytes[1] & 1) != 0, origin);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
