using System.Globalization;
using Lifeline.Session;

namespace Lifeline.Redis;

/// <summary>
/// Proof that a node acquired a session: its fencing <see cref="Epoch"/> (one more than the previous owner's) and a
/// random nonce. Every fenced write presents it; Redis refuses it once another node has acquired the session.
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
public sealed class RedisSessionLease
{
    internal RedisSessionLease(SessionId sessionId, long epoch, string nodeId, string nonce)
    {
        SessionId = sessionId;
        Epoch = epoch;
        NodeId = nodeId;
        OwnerValue = string.Create(CultureInfo.InvariantCulture, $"{epoch}:{nodeId}:{nonce}");
    }

    /// <summary>The session.</summary>
    public SessionId SessionId { get; }

    /// <summary>The fencing epoch: 1 for the first owner, one more for every takeover while the session lives.</summary>
    public long Epoch { get; }

    /// <summary>The node holding the lease.</summary>
    public string NodeId { get; }

    /// <summary>The value of the owner key while this lease is current.</summary>
    internal string OwnerValue { get; }

    /// <summary>Reads the epoch out of an owner value; null when the value is empty or not one.</summary>
    internal static long? EpochOf(string? ownerValue)
    {
        if (string.IsNullOrEmpty(ownerValue))
        {
            return null;
        }

        var colon = ownerValue.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && long.TryParse(ownerValue.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var epoch) ? epoch : null;
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{SessionId}@{Epoch} ({NodeId})");
}
