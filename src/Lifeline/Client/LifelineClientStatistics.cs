namespace Lifeline.Client;

/// <summary>A snapshot of one client's counters (the same events also go to the "Lifeline" meter).</summary>
public sealed record LifelineClientStatistics
{
    /// <summary>Connections opened, the first included.</summary>
    public long Connects { get; init; }

    /// <summary>Reconnect attempts scheduled by the policy.</summary>
    public long ReconnectAttempts { get; init; }

    /// <summary>Messages written to the socket.</summary>
    public long MessagesSent { get; init; }

    /// <summary>Whole messages received.</summary>
    public long MessagesReceived { get; init; }

    /// <summary>Sends accepted while not connected (held until the next connection).</summary>
    public long MessagesQueuedWhileDisconnected { get; init; }

    /// <summary>Queued messages dropped because the queue was full (<see cref="SendQueueFullMode.DropOldest"/>).</summary>
    public long MessagesDroppedQueueFull { get; init; }

    /// <summary>Queued messages dropped because they were older than <see cref="SendQueueOptions.MaxAge"/>.</summary>
    public long MessagesDroppedStale { get; init; }

    /// <summary>Queued messages dropped because the client closed for good.</summary>
    public long MessagesDroppedClosed { get; init; }

    /// <summary>
    /// Session mode: queued messages dropped because the session could not carry them: larger than the server's frame
    /// limit (known from its Welcome, so a send made before it cannot be refused at the call) or than the replay buffer.
    /// </summary>
    public long MessagesDroppedTooLarge { get; init; }

    /// <summary>Messages waiting in the send queue now.</summary>
    public int QueuedMessages { get; init; }

    /// <summary>Payload bytes waiting in the send queue now.</summary>
    public long QueuedBytes { get; init; }
}
