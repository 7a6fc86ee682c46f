namespace Lifeline.Reconnect;

/// <summary>Decides whether and when to reconnect after a connection was lost or an attempt failed.</summary>
/// <remarks>Implementations must be pure and thread-safe: no I/O, time only through the context.</remarks>
public interface IReconnectPolicy
{
    /// <summary>The delay before the next attempt, or null to stop reconnecting.</summary>
    TimeSpan? NextDelay(ReconnectContext context);
}
