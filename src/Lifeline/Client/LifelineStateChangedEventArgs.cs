namespace Lifeline.Client;

/// <summary>A change of <see cref="LifelineClient.State"/>.</summary>
public sealed class LifelineStateChangedEventArgs : EventArgs
{
    internal LifelineStateChangedEventArgs(LifelineClientState previous, LifelineClientState current, DateTimeOffset timestamp)
    {
        Previous = previous;
        Current = current;
        Timestamp = timestamp;
    }

    /// <summary>The state before.</summary>
    public LifelineClientState Previous { get; }

    /// <summary>The state now.</summary>
    public LifelineClientState Current { get; }

    /// <summary>When the change happened, from the client's TimeProvider.</summary>
    public DateTimeOffset Timestamp { get; }

    /// <summary>How the connection ended, when this change follows a lost connection or a stop.</summary>
    public CloseRecord? Close { get; init; }

    /// <summary>Why an attempt failed, when this change follows a failed attempt.</summary>
    public ConnectFailure? Failure { get; init; }

    /// <summary>For <see cref="LifelineClientState.Reconnecting"/>: the delay before the next attempt.</summary>
    public TimeSpan? ReconnectDelay { get; init; }

    /// <summary>For <see cref="LifelineClientState.Reconnecting"/> and connecting states: the number of the next attempt.</summary>
    public int? Attempt { get; init; }

    /// <summary>
    /// For <see cref="LifelineClientState.Connected"/> in session mode: true when the session resumed, false when a new
    /// session started (the first connection, or after a loss). Null in plain mode.
    /// </summary>
    public bool? SessionResumed { get; init; }

    /// <summary>For a resumed session: how many of the client's unacknowledged messages it resent. Null otherwise.</summary>
    public long? MessagesReplayedToServer { get; init; }

    /// <summary>For a resumed session: how many messages the server said it resends. Null otherwise.</summary>
    public long? MessagesReplayedFromServer { get; init; }
}
