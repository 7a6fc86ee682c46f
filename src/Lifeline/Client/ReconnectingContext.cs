using Lifeline.Reconnect;

namespace Lifeline.Client;

/// <summary>Passed to <see cref="LifelineClientOptions.OnReconnecting"/>: the policy's decision, which the hook may change or veto.</summary>
public sealed class ReconnectingContext
{
    internal ReconnectingContext(ReconnectContext reconnect, TimeSpan delay, CloseRecord? close, ConnectFailure? failure)
    {
        Reconnect = reconnect;
        Delay = delay;
        Close = close;
        Failure = failure;
    }

    /// <summary>What the policy saw.</summary>
    public ReconnectContext Reconnect { get; }

    /// <summary>How the connection ended, if one was open.</summary>
    public CloseRecord? Close { get; }

    /// <summary>Why the attempt failed, if it did.</summary>
    public ConnectFailure? Failure { get; }

    /// <summary>The delay before the next attempt; change it freely (negative values are treated as zero).</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Set to true to stop reconnecting: the client closes.</summary>
    public bool Cancel { get; set; }
}
