namespace Lifeline.Session.Store;

/// <summary>
/// A shared session store (Redis) could not be reached, or did not answer within its operation timeout. The operation
/// may or may not have been applied; Lifeline's store writes are idempotent, so retrying it is safe. The store keeps
/// reconnecting in the background: later operations succeed once it is back.
/// </summary>
public sealed class SessionStoreUnavailableException : IOException
{
    /// <summary>Creates the exception.</summary>
    public SessionStoreUnavailableException()
        : base("The session store is unavailable.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public SessionStoreUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public SessionStoreUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The operation that failed, for example <c>session.save</c>; null when unknown.</summary>
    public string? Operation { get; init; }
}
