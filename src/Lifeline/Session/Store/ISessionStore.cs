namespace Lifeline.Session.Store;

/// <summary>
/// Where sessions wait to be resumed: in memory by default, a file across a graceful restart, Redis across nodes.
/// Implementations keep each snapshot until its <see cref="SessionSnapshot.ExpiresAt"/> and never return an
/// expired one. Serialise with <see cref="SessionSnapshotSerializer"/> when the store holds bytes (a Redis value with
/// a TTL), so every store reads what any other wrote and the protocol never depends on the store.
/// </summary>
/// <remarks>Implementations are thread-safe.</remarks>
public interface ISessionStore
{
    /// <summary>Reads a session; null when it does not exist or has expired.</summary>
    ValueTask<SessionSnapshot?> TryLoadAsync(SessionId id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads and removes a session in one step, so two processes cannot both resume it; null when it does not exist
    /// or has expired. A resume takes the session; the process that now holds it saves it again when its socket goes.
    /// </summary>
    ValueTask<SessionSnapshot?> TryTakeAsync(SessionId id, CancellationToken cancellationToken = default);

    /// <summary>Adds or replaces a session, kept until its <see cref="SessionSnapshot.ExpiresAt"/>.</summary>
    /// <exception cref="SessionStoreFullException">The store's bounds leave no room.</exception>
    ValueTask SaveAsync(SessionSnapshot snapshot, CancellationToken cancellationToken = default);

    /// <summary>Removes a session (it ended); false when it was not there.</summary>
    ValueTask<bool> RemoveAsync(SessionId id, CancellationToken cancellationToken = default);
}

/// <summary>Thrown by <see cref="ISessionStore.SaveAsync"/> when the store is full.</summary>
public sealed class SessionStoreFullException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public SessionStoreFullException()
        : base("The session store is full.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public SessionStoreFullException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public SessionStoreFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
