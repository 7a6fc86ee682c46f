namespace Lifeline.Client;

/// <summary>What a send does when the send queue is full.</summary>
public enum SendQueueFullMode
{
    /// <summary>Wait for room (the caller's cancellation token bounds the wait). The default: nothing is lost.</summary>
    Wait,

    /// <summary>Drop the oldest queued messages to make room; each drop is counted.</summary>
    DropOldest,

    /// <summary>Throw <see cref="SendQueueFullException"/>; the caller decides.</summary>
    Fail,
}
