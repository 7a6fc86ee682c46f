using Lifeline.Session;
using StackExchange.Redis;

namespace Lifeline.Redis;

/// <summary>
/// The keys of one session. The session id in braces is the hash tag, so all of a session's keys live in one slot of
/// a Redis Cluster and one script can touch them together.
/// </summary>
internal readonly struct RedisKeys
{
    public RedisKeys(string prefix, SessionId id)
    {
        var root = $"{prefix}session:{{{id}}}";
        Snapshot = root;
        Epoch = root + ":epoch";
        Owner = root + ":owner";
        Log = root + ":log";
        Cursor = root + ":cursor";
    }

    public RedisKey Snapshot { get; }

    public RedisKey Epoch { get; }

    public RedisKey Owner { get; }

    public RedisKey Log { get; }

    public RedisKey Cursor { get; }

    /// <summary>All keys, in the order every script takes them.</summary>
    public RedisKey[] All => [Snapshot, Epoch, Owner, Log, Cursor];
}
