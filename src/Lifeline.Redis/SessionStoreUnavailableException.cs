namespace Lifeline.Redis;

/// <summary>
/// Redis could not be reached, or did not answer within <see cref="LifelineRedisOptions.OperationTimeout"/>. The
/// operation may or may not have been applied; Lifeline's writes are idempotent, so retrying it is safe. The connection
/// keeps reconnecting in the background: later operations succeed once Redis is back.
/// </summary>
public sealed class SessionStoreUnavailableException : IOException
{
    /// <summary>Creates the exception.</summary>
    public SessionStoreUnavailableException()
        : base("The session store (Redis) is unavailable.")
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
