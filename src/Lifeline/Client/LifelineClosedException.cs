namespace Lifeline.Client;

/// <summary>
/// Thrown by every send once the client is stopping, closed or disposed, including a send that was waiting for
/// room in a full queue when the client closed. The message was not sent and its buffer was released.
/// </summary>
/// <remarks>Derives from <see cref="InvalidOperationException"/>, so code that caught that before keeps working.</remarks>
public sealed class LifelineClosedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public LifelineClosedException()
        : base("The client is closing or closed; create a new client to send again.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public LifelineClosedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public LifelineClosedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
