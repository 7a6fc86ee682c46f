namespace Lifeline.Session.Store;

/// <summary>
/// A store shared by many server nodes that keeps each session durably while it runs: a fenced ownership lease, the
/// unacknowledged outbound messages and the cursors, written by the owning node before a send or an acknowledgement
/// counts as done. A server that finds one registered (Lifeline.Redis registers <c>RedisSessionStore</c>) uses it for
/// every resumable session, so a session resumes on any node and a node killed without a drain loses nothing a resume
/// can replay.
/// </summary>
/// <remarks>Implementations are thread-safe; the calls for one session are issued by one writer, in order.</remarks>
public interface ISessionJournal
{
    /// <summary>
    /// Makes this node the session's owner with a new epoch, one more than any before. Always succeeds: a takeover
    /// fences out the previous owner, whose later commits return false. Every key of the session lives at least
    /// <paramref name="keepFor"/> from now.
    /// </summary>
    /// <exception cref="SessionStoreUnavailableException">The store did not answer in time.</exception>
    ValueTask<SessionJournalLease> AcquireAsync(SessionId id, TimeSpan keepFor, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies <paramref name="commit"/> in one atomic step while <paramref name="lease"/> is the session's current
    /// one; false (nothing changed) when another node owns the session now or the lease expired. Idempotent: messages
    /// already in the log are skipped and cursors only move forward, so retrying after an error is safe.
    /// </summary>
    /// <exception cref="SessionStoreFullException">The session's log would pass its bounds.</exception>
    /// <exception cref="SessionStoreUnavailableException">The store did not answer in time.</exception>
    ValueTask<bool> CommitAsync(SessionJournalLease lease, SessionJournalCommit commit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads a session as the last commit left it (the snapshot with the log's messages and cursors); null when it has
    /// no snapshot (never started, ended, or its keys expired). <see cref="SessionSnapshot.ExpiresAt"/> is not checked:
    /// the store's own expiry applies.
    /// </summary>
    /// <exception cref="SessionStoreUnavailableException">The store did not answer in time.</exception>
    ValueTask<SessionSnapshot?> ReadAsync(SessionId id, CancellationToken cancellationToken = default);

    /// <summary>Gives the session up when <paramref name="lease"/> is still current; its keys then expire with their TTL.</summary>
    /// <exception cref="SessionStoreUnavailableException">The store did not answer in time.</exception>
    ValueTask ReleaseAsync(SessionJournalLease lease, CancellationToken cancellationToken = default);

    /// <summary>
    /// The session ended (its handler returned, or it was lost): when <paramref name="lease"/> is still current, removes it,
    /// so that <see cref="ReadAsync"/> returns null and no node restores it for a resume (which is told SessionLost
    /// instead). The default only releases the lease, leaving the keys to expire with their TTL; a store should override it.
    /// </summary>
    /// <exception cref="SessionStoreUnavailableException">The store did not answer in time.</exception>
    ValueTask EndAsync(SessionJournalLease lease, CancellationToken cancellationToken = default) => ReleaseAsync(lease, cancellationToken);
}

/// <summary>Proof of ownership of a session in an <see cref="ISessionJournal"/>.</summary>
/// <param name="SessionId">The session.</param>
/// <param name="Epoch">The fencing epoch: one more for every acquire while the session's keys live.</param>
/// <param name="Owner">The store's owner value (opaque).</param>
public sealed record SessionJournalLease(SessionId SessionId, long Epoch, string Owner);

/// <summary>What one <see cref="ISessionJournal.CommitAsync"/> writes, all or nothing.</summary>
public sealed class SessionJournalCommit
{
    /// <summary>Outbound messages with consecutive sequences, following the log; empty for none.</summary>
    public IReadOnlyList<SessionMessage> Messages { get; init; } = [];

    /// <summary>The last inbound sequence handed to the application; null leaves it.</summary>
    public long? InboundDelivered { get; init; }

    /// <summary>The peer's cumulative acknowledgement of outbound messages (they leave the log); null leaves it.</summary>
    public long? OutboundAcknowledged { get; init; }

    /// <summary>
    /// The session's metadata (token hash, user, groups, state); its messages and cursors are ignored (the log has
    /// them). Null leaves the stored one.
    /// </summary>
    public SessionSnapshot? Snapshot { get; init; }

    /// <summary>Every key of the session lives at least this long from now (the resume window). Default 2 minutes.</summary>
    public TimeSpan KeepFor { get; init; } = TimeSpan.FromMinutes(2);
}

/// <summary>
/// Group sends and broadcasts between server nodes (Lifeline.Redis registers <c>RedisGroupFanout</c>). At most once:
/// a node that misses a message does not get it later; the node holding a session appends what it receives to the
/// session's log, so a session member between sockets gets it on resume.
/// </summary>
/// <remarks>Implementations are thread-safe and skip the messages a node published itself.</remarks>
public interface ISessionGroupFanout
{
    /// <summary>Publishes to the members of <paramref name="group"/> on the other nodes; null for a broadcast to every session.</summary>
    /// <exception cref="SessionStoreUnavailableException">The store did not answer in time.</exception>
    Task PublishAsync(string? group, ReadOnlyMemory<byte> payload, bool isText, CancellationToken cancellationToken = default);

    /// <summary>Receives what the other nodes publish, one message at a time, in arrival order; dispose to stop.</summary>
    /// <exception cref="SessionStoreUnavailableException">The store did not answer in time (nothing is subscribed; try again).</exception>
    Task<IAsyncDisposable> SubscribeAsync(Func<string?, ReadOnlyMemory<byte>, bool, CancellationToken, ValueTask> deliver, CancellationToken cancellationToken = default);
}
