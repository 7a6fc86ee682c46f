using Lifeline.Session;
using Lifeline.Session.Store;
using StackExchange.Redis;

namespace Lifeline.Redis;

/// <summary>The <see cref="ISessionJournal"/> the server uses: one fenced script per batch (<see cref="RedisScripts.Commit"/>).</summary>
public sealed partial class RedisSessionStore : ISessionJournal
{
    /// <inheritdoc />
    async ValueTask<SessionJournalLease> ISessionJournal.AcquireAsync(SessionId id, TimeSpan keepFor, CancellationToken cancellationToken)
    {
        var keys = Keys(id);
        var nonce = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        var keep = Math.Max(1L, (long)keepFor.TotalMilliseconds);
        var result = await _connection.ExecuteAsync(
            "session.acquire",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Acquire, keys.All, [_connection.NodeId, nonce, keep, 1]),
            cancellationToken).ConfigureAwait(false);
        var lease = new RedisSessionLease(id, (long)result, _connection.NodeId, nonce);
        return new SessionJournalLease(id, lease.Epoch, lease.OwnerValue);
    }

    /// <inheritdoc />
    async ValueTask<bool> ISessionJournal.CommitAsync(SessionJournalLease lease, SessionJournalCommit commit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(commit);
        var messages = commit.Messages;
        var args = new RedisValue[8 + messages.Count];
        args[0] = lease.Owner;
        args[1] = Math.Max(1L, (long)commit.KeepFor.TotalMilliseconds);
        args[2] = _options.MaxLogMessages;
        args[3] = _options.MaxLogBytes;
        args[4] = commit.OutboundAcknowledged ?? -1;
        args[5] = commit.InboundDelivered ?? -1;
        args[6] = commit.Snapshot is { } snapshot ? Serialize(StripLog(snapshot)) : Array.Empty<byte>();
        args[7] = messages.Count > 0 ? messages[0].Sequence : 0;
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Sequence != messages[0].Sequence + i || messages[i].Sequence < 1)
            {
                throw new ArgumentException("The messages of a commit have consecutive sequences from 1 up.", nameof(commit));
            }

            args[8 + i] = EncodeEntry(messages[i]);
        }

        var keys = Keys(lease.SessionId);
        var result = (RedisResult[])(await _connection.ExecuteAsync(
            "session.commit",
            m => m.GetDatabase().ScriptEvaluateAsync(RedisScripts.Commit, keys.All, args),
            cancellationToken).ConfigureAwait(false))!;
        switch ((long)result[0])
        {
            case -1:
                var current = result.Length > 1 && !result[1].IsNull ? (string?)result[1] : null;
                RedisMetrics.FencedWrites.Add(1);
                WriteFenced(_logger, lease.SessionId, _connection.NodeId, lease.Epoch,
                    RedisSessionLease.EpochOf(current)?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none");
                return false;
            case -2:
                throw new ArgumentException($"The commit starts at {args[7]} but the log of session {lease.SessionId} expects {(long)result[1]} next.", nameof(commit));
            case -3:
                throw new SessionStoreFullException(
                    $"The log of session {lease.SessionId} holds {(long)result[1]} messages and {(long)result[2]} bytes; the commit would pass MaxLogMessages ({_options.MaxLogMessages}) or MaxLogBytes ({_options.MaxLogBytes}).");
            default:
                return true;
        }
    }

    /// <inheritdoc />
    async ValueTask<SessionSnapshot?> ISessionJournal.ReadAsync(SessionId id, CancellationToken cancellationToken)
    {
        var keys = Keys(id);
        var value = await _connection.ExecuteAsync("session.load", m => m.GetDatabase().StringGetAsync(keys.Snapshot), cancellationToken).ConfigureAwait(false);
        if (value.IsNull)
        {
            return null;
        }

        if (!SessionSnapshotSerializer.TryRead((byte[])value!, out var snapshot, out var error) || snapshot!.Id != id)
        {
            UnreadableSnapshot(_logger, id, error ?? "another session's snapshot");
            return null;
        }

        var log = await ReadLogAsync(id, cancellationToken).ConfigureAwait(false);
        if (log is null)
        {
            return snapshot;
        }

        return new SessionSnapshot
        {
            Id = snapshot.Id,
            TokenHash = snapshot.TokenHash,
            UserId = snapshot.UserId,
            CreatedAt = snapshot.CreatedAt,
            ExpiresAt = snapshot.ExpiresAt,
            NextOutboundSequence = log.NextOutboundSequence,
            OutboundAcknowledged = log.OutboundAcknowledged,
            Unacknowledged = log.Unacknowledged,
            LastInboundDelivered = log.LastInboundDelivered,
            Groups = snapshot.Groups,
            State = snapshot.State,
        };
    }

    /// <inheritdoc />
    ValueTask ISessionJournal.ReleaseAsync(SessionJournalLease lease, CancellationToken cancellationToken) =>
        RunOwnerScriptAsync("session.release", RedisScripts.Release, lease, cancellationToken);

    /// <inheritdoc />
    ValueTask ISessionJournal.EndAsync(SessionJournalLease lease, CancellationToken cancellationToken) =>
        RunOwnerScriptAsync("session.end", RedisScripts.End, lease, cancellationToken);

    /// <summary>Runs a script that acts only while <paramref name="lease"/> still owns the session (its owner value as the one argument).</summary>
    private async ValueTask RunOwnerScriptAsync(string operation, string script, SessionJournalLease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var keys = Keys(lease.SessionId);
        await _connection.ExecuteAsync(
            operation,
            m => m.GetDatabase().ScriptEvaluateAsync(script, keys.All, [lease.Owner]),
            cancellationToken).ConfigureAwait(false);
    }

    private static SessionSnapshot StripLog(SessionSnapshot snapshot) => new()
    {
        Id = snapshot.Id,
        TokenHash = snapshot.TokenHash,
        UserId = snapshot.UserId,
        CreatedAt = snapshot.CreatedAt,
        ExpiresAt = snapshot.ExpiresAt,
        Groups = snapshot.Groups,
        State = snapshot.State,
    };
}
