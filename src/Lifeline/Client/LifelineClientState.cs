namespace Lifeline.Client;

/// <summary>The life cycle of a <see cref="LifelineClient"/>.</summary>
public enum LifelineClientState
{
    /// <summary>Created; <see cref="LifelineClient.StartAsync"/> has not been called.</summary>
    NotStarted,

    /// <summary>Making the first connection.</summary>
    Connecting,

    /// <summary>Connected: messages flow and queued sends are flushed.</summary>
    Connected,

    /// <summary>The connection was lost (or an attempt failed) and the policy chose to try again.</summary>
    Reconnecting,

    /// <summary>Terminal: stopped by the user, or the policy decided not to reconnect.</summary>
    Closed,
}
