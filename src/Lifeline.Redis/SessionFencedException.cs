namespace Lifeline.Redis;

/// <summary>
/// A write for a session was refused because this node no longer owns it: another node acquired the session (a
/// higher epoch), or the ownership record expired. The node must stop serving the session (close its socket with
/// 4001) and must not deliver or acknowledge anything more for it.
/// </summary>
public sealed class SessionFencedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public SessionFencedException()
        : base("This node no longer owns the session.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public SessionFencedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public SessionFencedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The lease whose write was refused; null when not known.</summary>
    public RedisSessionLease? Lease { get; init; }

    /// <summary>The epoch of the current owner; null when nobody owns the session now.</summary>
    public long? CurrentEpoch { get; init; }
}
