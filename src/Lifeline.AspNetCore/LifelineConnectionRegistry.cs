using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;

namespace Lifeline.AspNetCore;

/// <summary>The live connections of this node, and its groups.</summary>
/// <remarks>
/// Thread-safe. Broadcasts never wait on any connection: each message is put in every target's outbound buffer and
/// the call returns. A connection whose buffer is full is closed as a slow consumer (4008) instead of holding up the
/// others; connections that are closing are skipped. The count returned is how many buffers took the message.
/// Connections that carry a session (<c>lifeline.v1</c>) are listed but never sent to here: their every message is a
/// numbered session frame. Reach them with <c>LifelineSessionManager.SendToAllAsync</c> or a session group.
/// </remarks>
public sealed class LifelineConnectionRegistry
{
    private readonly ConcurrentDictionary<string, LifelineConnection> _connections = new(StringComparer.Ordinal);
    private readonly GroupTable<string, LifelineConnection> _groups = new();

    /// <summary>How many connections are open.</summary>
    public int Count => _connections.Count;

    /// <summary>A snapshot of the open connections.</summary>
    public IReadOnlyCollection<LifelineConnection> Connections => [.. _connections.Values];

    /// <summary>Finds a connection by id.</summary>
    public LifelineConnection? Find(string id) => _connections.GetValueOrDefault(id);

    /// <summary>The connections in a group now.</summary>
    public IReadOnlyCollection<LifelineConnection> GroupMembers(string group) => _groups.Members(group);

    /// <summary>Sends a text message to every open connection that carries no session; returns how many it reached.</summary>
    public Task<int> SendToAllAsync(string text, CancellationToken cancellationToken = default) =>
        SendAsync(_connections.Values, Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);

    /// <summary>Sends a message to every open connection that carries no session; returns how many it reached.</summary>
    public Task<int> SendToAllAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken = default) =>
        SendAsync(_connections.Values, data, type, cancellationToken);

    /// <summary>Sends a text message to a group; returns how many it reached.</summary>
    public Task<int> SendToGroupAsync(string group, string text, CancellationToken cancellationToken = default) =>
        SendAsync(GroupMembers(group), Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);

    /// <summary>Sends a message to a group; returns how many it reached.</summary>
    public Task<int> SendToGroupAsync(string group, ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken = default) =>
        SendAsync(GroupMembers(group), data, type, cancellationToken);

    internal void Add(LifelineConnection connection) => _connections[connection.Id] = connection;

    internal void Remove(LifelineConnection connection) => _connections.TryRemove(connection.Id, out _);

    internal void AddToGroup(string group, LifelineConnection connection) => _groups.Add(group, connection.Id, connection);

    internal void RemoveFromGroup(string group, LifelineConnection connection) => _groups.Remove(group, connection.Id, connection);

    /// <summary>Tests: how many groups have members.</summary>
    internal int GroupCount => _groups.Count;

    private static Task<int> SendAsync(IEnumerable<LifelineConnection> targets, ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken cancellationToken)
    {
        if (type == WebSocketMessageType.Close)
        {
            throw new ArgumentException("Close is not a message type.", nameof(type));
        }

        cancellationToken.ThrowIfCancellationRequested();
        var sent = 0;
        foreach (var connection in targets)
        {
            // A raw message on a session socket is a protocol error to its client (1003, or junk read as a Data frame).
            if (!connection.CarriesSession && connection.TryQueueBroadcast(data, type))
            {
                sent++;
            }
        }

        return Task.FromResult(sent);
    }
}
