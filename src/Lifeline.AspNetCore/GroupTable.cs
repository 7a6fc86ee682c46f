using System.Collections.Concurrent;

namespace Lifeline.AspNetCore;

/// <summary>
/// Group name to members, for the connection registry and the session manager. A group that loses its last member is
/// removed, so names used once (per user, per room) do not stay in memory for the life of the process. Joins and
/// leaves take a lock (so a join cannot land in a group being removed); reading the members takes none.
/// </summary>
internal sealed class GroupTable<TKey, TMember>
    where TKey : notnull
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<TKey, TMember>> _groups = new(StringComparer.Ordinal);
    private readonly Lock _changes = new();

    /// <summary>How many groups have members.</summary>
    public int Count => _groups.Count;

    /// <summary>A snapshot of a group's members (empty for an unknown group).</summary>
    public TMember[] Members(string group) => _groups.TryGetValue(group, out var members) ? [.. members.Values] : [];

    public void Add(string group, TKey key, TMember member)
    {
        lock (_changes)
        {
            _groups.GetOrAdd(group, static _ => new ConcurrentDictionary<TKey, TMember>())[key] = member;
        }
    }

    /// <summary>
    /// Removes <paramref name="member"/> under <paramref name="key"/>, and nothing when the key holds another member now:
    /// a session restored under the same id must not lose its place when its ended copy leaves late.
    /// </summary>
    public void Remove(string group, TKey key, TMember member)
    {
        lock (_changes)
        {
            if (_groups.TryGetValue(group, out var members) && members.TryRemove(new KeyValuePair<TKey, TMember>(key, member)) && members.IsEmpty)
            {
                _groups.TryRemove(group, out _);
            }
        }
    }
}
