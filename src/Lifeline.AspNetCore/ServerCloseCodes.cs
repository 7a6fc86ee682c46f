using Lifeline.CloseCodes;

namespace Lifeline.AspNetCore;

/// <summary>The private-use close codes (4000-4999) a Lifeline server sends. They are listed in docs/protocol.md.</summary>
public static class ServerCloseCodes
{
    /// <summary>
    /// 4008 Slow Consumer: the client fell behind, its outbound buffer overflowed or a write outlasted
    /// <see cref="LifelineServerOptions.SendTimeout"/>. A private code rather than 1008, because a slow network is no
    /// policy breach: clients treat it as an unregistered private code and reconnect with backoff.
    /// </summary>
    public static CloseCode SlowConsumer => new(4008);

    /// <summary>The close reason sent with <see cref="SlowConsumer"/>.</summary>
    public const string SlowConsumerReason = "slow consumer";
}
