namespace Lifeline.Client;

/// <summary>Thrown by a send when the queue is full and its mode is <see cref="SendQueueFullMode.Fail"/>.</summary>
public sealed class SendQueueFullException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public SendQueueFullException()
        : base("The send queue is full.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public SendQueueFullException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public SendQueueFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
