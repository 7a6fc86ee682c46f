using System.Buffers;
using System.Globalization;
using Lifeline.Session;
using Lifeline.Session.Store;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Lifeline.Redis;

/// <summary>
/// The session store on Redis, shared by every node: snapshots in the <see cref="SessionSnapshotSerializer"/> format
/// with a TTL that ends at the snapshot's expiry, an atomic take (GETDEL), ownership leases with fencing epochs, and
/// the session log (<see cref="IRedisSessionLog"/>). Key layout, scripts and failure behaviour: docs/redis.md.
/// </summary>
/// <remarks>
/// Thread-safe. The <see cref="ISessionStore"/> members are not fenced (a take hands the session over); the members
/// that take a <see cref="RedisSessionLease"/> are, and refuse a stale owner with <see cref="SessionFencedException"/>.
/// Every member fails within <see cref="LifelineRedisOptions.OperationTimeout"/> with
/// <see cref="SessionStoreUnavailableException"/> while Redis is unreachable.
/// </remarks>
public sealed partial class RedisSessionStore : ISessionStore, IRedisSessionLog
{
    private readonly LifelineRedisConnection _connection;
    private readonly LifelineRedisOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;

    /// <summary>Creates the store on a node's connection.</summary>
    public RedisSessionStore(LifelineRedisConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _connection = connection;
        _options = connection.Options;
        _timeProvider = connection.TimeProvider;
        _logger = connection.Logger;
    }

    /// <summary>This node's id, used by <see cref="TryAcquireAsync(SessionId, CancellationToken)"/>.</summary>
    public string NodeId => _connection.NodeId;

    /// <inheritdoc />
    public async ValueTask<SessionSnapshot?> TryLoadAsync(SessionId id, CancellationToken cancellationToken = default)
    {
        var keys = Keys(id);
        var value = await _connection.ExecuteAsync("session.load", m => m.GetDatabase().StringGetAsync(keys.Snapshot), cancellationToken).ConfigureAwait(false);
        return Read(id, value);
    }

    /// <inheritdoc />
    public async ValueTask<SessionSnapshot?> TryTakeAsync(SessionId id, CancellationToken cancellationToken = default)
    {
        var keys = Keys(id);
        var value = await _connection.ExecuteAsync("session.take", m => m.GetDatabase().StringGetDeleteAsync(keys.Snapshot), cancellationToken).ConfigureAwait(false);
        return Read(id, value);
    }

    /// <inheritdoc />
    /// <exception cref="SessionStoreFullException">The serialised snapshot is larger than <see cref="LifelineRedisOptions.MaxSnapshotBytes"/>.</exception>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    public async ValueTask SaveAsync(SessionSnapshot snapshot, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var bytes = Serialize(snapshot);
        var ttl = TtlOf(snapshot);
        var keys = Keys(snapshot.Id);
        if (ttl <= 0)
        {
            await _connection.ExecuteAsync("session.save", m => m.GetDatabase().KeyDeleteAsync(keys.Snapshot), cancellationToken).ConfigureAwait(false);
            return;
        }

        await _connection.ExecuteAsync(
            "session.save",
            m => m.GetDatabase().StringSetAsync(keys.Snapshot, bytes, TimeSpan.FromMilliseconds(ttl)),
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>Removes every key of the session: snapshot, epoch, owner and log.</remarks>
    public async ValueTask<bool> RemoveAsync(SessionId id, CancellationToken cancellationToken = default)
    {
        var keys = Keys(id);
        var removed = await _connection.ExecuteAsync("session.remove", m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Remove, keys.All), cancellationToken).ConfigureAwait(false);
        return (long)removed > 0;
    }

    /// <summary>
    /// Makes this node the session's owner with a new fencing epoch, one more than any before it. Always succeeds: a
    /// takeover fences out the previous owner, whose later fenced writes are refused.
    /// </summary>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    public ValueTask<RedisSessionLease> TryAcquireAsync(SessionId id, CancellationToken cancellationToken = default) =>
        TryAcquireAsync(id, _connection.NodeId, cancellationToken);

    /// <summary>As <see cref="TryAcquireAsync(SessionId, CancellationToken)"/>, naming the owner explicitly.</summary>
    /// <exception cref="ArgumentException"><paramref name="nodeId"/> is empty or contains ':'.</exception>
    public async ValueTask<RedisSessionLease> TryAcquireAsync(SessionId id, string nodeId, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(nodeId) || nodeId.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException("A node id is not empty and has no ':'.", nameof(nodeId));
        }

        var keys = Keys(id);
        var nonce = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        var result = await _connection.ExecuteAsync(
            "session.acquire",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Acquire, keys.All, [nodeId, nonce, LeaseTtlMs]),
            cancellationToken).ConfigureAwait(false);
        return new RedisSessionLease(id, (long)result, nodeId, nonce);
    }

    /// <summary>Extends the lease and the session's keys by <see cref="LifelineRedisOptions.LeaseTtl"/> (call it well within that time while serving a quiet session).</summary>
    /// <exception cref="SessionFencedException">Another node owns the session now, or the lease expired.</exception>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    public async ValueTask RenewAsync(RedisSessionLease lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var keys = Keys(lease.SessionId);
        var result = await _connection.ExecuteAsync(
            "session.renew",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Renew, keys.All, [lease.OwnerValue, LeaseTtlMs]),
            cancellationToken).ConfigureAwait(false);
        ThrowIfFenced(lease, (RedisResult[])result!);
    }

    /// <summary>Gives the session up (its owner key is deleted when it is still this lease's); false when it was not held.</summary>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    public async ValueTask<bool> ReleaseAsync(RedisSessionLease lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var keys = Keys(lease.SessionId);
        var result = await _connection.ExecuteAsync(
            "session.release",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Release, keys.All, [lease.OwnerValue]),
            cancellationToken).ConfigureAwait(false);
        return (long)result == 1;
    }

    /// <summary>
    /// Saves a snapshot only while <paramref name="lease"/> is the session's current one; every key of the session
    /// then lives at least until the snapshot expires.
    /// </summary>
    /// <exception cref="SessionFencedException">Another node owns the session now, or the lease expired.</exception>
    /// <exception cref="ArgumentException">The snapshot is for another session.</exception>
    /// <exception cref="SessionStoreFullException">The serialised snapshot is larger than <see cref="LifelineRedisOptions.MaxSnapshotBytes"/>.</exception>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    public async ValueTask SaveAsync(RedisSessionLease lease, SessionSnapshot snapshot, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Id != lease.SessionId)
        {
            throw new ArgumentException($"The snapshot is of session {snapshot.Id}, the lease of {lease.SessionId}.", nameof(snapshot));
        }

        var bytes = Serialize(snapshot);
        var keys = Keys(snapshot.Id);
        var result = await _connection.ExecuteAsync(
            "session.save_fenced",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.SaveFenced, keys.All, [lease.OwnerValue, bytes, TtlOf(snapshot), LeaseTtlMs]),
            cancellationToken).ConfigureAwait(false);
        ThrowIfFenced(lease, (RedisResult[])result!);
    }

    /// <inheritdoc />
    public async ValueTask<long> AppendAsync(RedisSessionLease lease, IReadOnlyList<SessionMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0 || messages.Count > _options.MaxAppendBatch)
        {
            throw new ArgumentException($"An append carries 1 to {_options.MaxAppendBatch} messages (MaxAppendBatch); got {messages.Count}.", nameof(messages));
        }

        var first = messages[0].Sequence;
        if (first < 1)
        {
            throw new ArgumentException("Sequences start at 1.", nameof(messages));
        }

        var args = new RedisValue[5 + messages.Count];
        args[0] = lease.OwnerValue;
        args[1] = LeaseTtlMs;
        args[2] = _options.MaxLogMessages;
        args[3] = _options.MaxLogBytes;
        args[4] = first;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message.Sequence != first + i)
            {
                throw new ArgumentException($"The messages of an append have consecutive sequences; message {i} has {message.Sequence}, expected {first + i}.", nameof(messages));
            }

            args[5 + i] = EncodeEntry(message);
        }

        var keys = Keys(lease.SessionId);
        var result = (RedisResult[])(await _connection.ExecuteAsync(
            "session.append",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Append, keys.All, args),
            cancellationToken).ConfigureAwait(false))!;
        ThrowIfFenced(lease, result);
        switch ((long)result[0])
        {
            case -2:
                throw new ArgumentException($"The append starts at {first} but the log of session {lease.SessionId} expects {(long)result[1]} next.", nameof(messages));
            case -3:
                throw new SessionStoreFullException(
                    $"The Redis log of session {lease.SessionId} is full ({(long)result[1]} messages, {(long)result[2]} bytes; limits {_options.MaxLogMessages} and {_options.MaxLogBytes}).");
            default:
                return (long)result[1];
        }
    }

    /// <inheritdoc />
    public async ValueTask<SessionLogState> AcknowledgeAsync(RedisSessionLease lease, long? outboundAcknowledged, long? inboundDelivered = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (outboundAcknowledged < 0 || inboundDelivered < 0)
        {
            throw new ArgumentException("Acknowledgements are zero or more.", outboundAcknowledged < 0 ? nameof(outboundAcknowledged) : nameof(inboundDelivered));
        }

        var keys = Keys(lease.SessionId);
        var result = (RedisResult[])(await _connection.ExecuteAsync(
            "session.acknowledge",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Acknowledge, keys.All, [lease.OwnerValue, LeaseTtlMs, outboundAcknowledged ?? -1, inboundDelivered ?? -1]),
            cancellationToken).ConfigureAwait(false))!;
        ThrowIfFenced(lease, result);
        if ((long)result[0] == -2)
        {
            throw new ArgumentException($"The ack {outboundAcknowledged} is beyond the last message appended to session {lease.SessionId} ({(long)result[1]}).", nameof(outboundAcknowledged));
        }

        return new SessionLogState((long)result[3], (long)result[1], (long)result[2], lease.Epoch, []);
    }

    /// <inheritdoc />
    public async ValueTask<SessionLogState?> ReadLogAsync(SessionId id, CancellationToken cancellationToken = default)
    {
        var keys = Keys(id);
        var result = (RedisResult[])(await _connection.ExecuteAsync(
            "session.read_log",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Read, keys.All),
            cancellationToken).ConfigureAwait(false))!;
        if ((long)result[0] == 0)
        {
            return null;
        }

        var acknowledged = (long)result[2];
        var messages = new SessionMessage[result.Length - 6];
        for (var i = 0; i < messages.Length; i++)
        {
            var entry = (byte[])result[6 + i]!;
            messages[i] = new SessionMessage(acknowledged + 1 + i, entry.Length > 0 && entry[0] == 1, entry.AsMemory(1));
        }

        return new SessionLogState((long)result[1], acknowledged, (long)result[3], (long)result[4], messages);
    }

    private static RedisValue EncodeEntry(SessionMessage message)
    {
        var entry = new byte[1 + message.Payload.Length];
        entry[0] = message.IsText ? (byte)1 : (byte)0;
        message.Payload.Span.CopyTo(entry.AsSpan(1));
        return entry;
    }

    private long LeaseTtlMs => (long)_options.LeaseTtl.TotalMilliseconds;

    private RedisKeys Keys(SessionId id) => new(_options.KeyPrefix, id);

    private long TtlOf(SessionSnapshot snapshot) =>
        (long)Math.Ceiling((snapshot.ExpiresAt - _timeProvider.GetUtcNow()).TotalMilliseconds);

    private byte[] Serialize(SessionSnapshot snapshot)
    {
        var writer = new ArrayBufferWriter<byte>(256);
        SessionSnapshotSerializer.Write(writer, snapshot);
        if (writer.WrittenCount > _options.MaxSnapshotBytes)
        {
            throw new SessionStoreFullException(
                $"The snapshot of session {snapshot.Id} is {writer.WrittenCount} bytes, more than MaxSnapshotBytes ({_options.MaxSnapshotBytes}).");
        }

        return writer.WrittenSpan.ToArray();
    }

    private SessionSnapshot? Read(SessionId id, RedisValue value)
    {
        if (value.IsNull)
        {
            return null;
        }

        if (!SessionSnapshotSerializer.TryRead((byte[])value!, out var snapshot, out var error) || snapshot!.Id != id)
        {
            UnreadableSnapshot(_logger, id, error ?? "another session's snapshot");
            return null;
        }

        return snapshot.IsExpired(_timeProvider.GetUtcNow()) ? null : snapshot;
    }

    private void ThrowIfFenced(RedisSessionLease lease, RedisResult[] result)
    {
        if ((long)result[0] != -1)
        {
            return;
        }

        var current = result.Length > 1 && !result[1].IsNull ? (string?)result[1] : null;
        var currentEpoch = RedisSessionLease.EpochOf(current);
        RedisMetrics.FencedWrites.Add(1);
        WriteFenced(_logger, lease.SessionId, lease.NodeId, lease.Epoch, currentEpoch?.ToString(CultureInfo.InvariantCulture) ?? "none");
        throw new SessionFencedException(
            currentEpoch is { } epoch
                ? $"Session {lease.SessionId} is owned by epoch {epoch} now; this node's lease (epoch {lease.Epoch}) was fenced out and its write refused."
                : $"Session {lease.SessionId} has no owner now (its lease expired or was released); the write of epoch {lease.Epoch} was refused.")
        {
            Lease = lease,
            CurrentEpoch = currentEpoch,
        };
    }
}
