namespace Lifeline.Client;

/// <summary>The client closed before any connection opened: the policy gave up, or it was stopped.</summary>
public sealed class LifelineConnectException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LifelineConnectException()
        : base("The client closed before it could connect.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public LifelineConnectException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public LifelineConnectException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal LifelineConnectException(CloseRecord? close, ConnectFailure? failure)
        : base(Describe(close, failure), failure?.Exception ?? close?.Exception)
    {
        Close = close;
        Failure = failure;
    }

    /// <summary>How the last connection ended, if one opened and was closed before the start completed.</summary>
    public CloseRecord? Close { get; }

    /// <summary>Why the last attempt failed.</summary>
    public ConnectFailure? Failure { get; }

    private static string Describe(CloseRecord? close, ConnectFailure? failure) =>
        failure is not null ? $"The client could not connect and stopped retrying: {failure.Description}."
        : close is not null ? $"The client closed before connecting: {close}."
        : "The client closed before it could connect.";
}
