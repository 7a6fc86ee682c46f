namespace Lifeline.Reconnect;

/// <summary>
/// A policy that never reconnects: the first lost connection or failed attempt closes the client. Use it to turn
/// reconnecting off (<c>ReconnectPolicy = NeverReconnectPolicy.Instance</c>) while keeping the rest of the client:
/// keep-alive, the close record, the bounded queues.
/// </summary>
public sealed class NeverReconnectPolicy : IReconnectPolicy
{
    private NeverReconnectPolicy()
    {
    }

    /// <summary>The one instance (the policy has no state).</summary>
    public static NeverReconnectPolicy Instance { get; } = new();

    /// <inheritdoc />
    public TimeSpan? NextDelay(ReconnectContext context) => null;
}
