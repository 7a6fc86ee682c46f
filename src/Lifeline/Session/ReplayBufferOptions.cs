namespace Lifeline.Session;

/// <summary>What a send does when the replay buffer (the outbound log of unacknowledged messages) is full.</summary>
public enum ReplayBufferFullMode
{
    /// <summary>Wait until an acknowledgement frees room (the caller's cancellation token bounds the wait). The default.</summary>
    Wait,

    /// <summary>
    /// Throw <see cref="ReplayBufferFullException"/> to the sender; the message is not sent and the session carries on.
    /// A client's message already accepted into its send queue (while disconnected) waits for room instead, since its
    /// sender can no longer be told; a server's group send or broadcast ends the full member's session (SessionLost,
    /// buffer full) rather than skip it.
    /// </summary>
    Fail,

    /// <summary>End the session: the send reports <see cref="ReplayAppendStatus.SessionEnded"/> and the peer is sent SessionLost (buffer full).</summary>
    EndSession,
}

/// <summary>Bounds of a session's replay buffer: unacknowledged messages are kept until the peer acknowledges them.</summary>
public sealed class ReplayBufferOptions
{
    private int _maxMessages = 10_000;
    private long _maxBytes = 1024 * 1024;
    private TimeSpan _maxAge = TimeSpan.FromMinutes(5);

    /// <summary>The most unacknowledged messages held. Default 10,000. At least 1.</summary>
    public int MaxMessages
    {
        get => _maxMessages;
        set => _maxMessages = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>The most unacknowledged payload bytes held. Default 1 MiB. At least 1. A single larger message cannot be sent.</summary>
    public long MaxBytes
    {
        get => _maxBytes;
        set => _maxBytes = OptionGuard.AtLeast(value, 1L);
    }

    /// <summary>
    /// The longest a message may stay unacknowledged. Default 5 minutes (longer than the default 2-minute resume window).
    /// Positive. Past it the session ends with SessionLost (expired): a peer that has not acknowledged for that long
    /// cannot be resumed losslessly within the buffer's bounds. A Lifeline client does not count the time its link was down
    /// before a resume (nobody could acknowledge then); a server counts the whole time.
    /// </summary>
    public TimeSpan MaxAge
    {
        get => _maxAge;
        set => _maxAge = OptionGuard.Positive(value);
    }

    /// <summary>What a send does when the buffer is full. Default <see cref="ReplayBufferFullMode.Wait"/>.</summary>
    public ReplayBufferFullMode FullMode { get; set; } = ReplayBufferFullMode.Wait;
}

/// <summary>Thrown by a send when the replay buffer is full and its mode is <see cref="ReplayBufferFullMode.Fail"/>.</summary>
public sealed class ReplayBufferFullException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public ReplayBufferFullException()
        : base("The replay buffer is full.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ReplayBufferFullException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public ReplayBufferFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
