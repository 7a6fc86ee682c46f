namespace Lifeline.CloseCodes;

/// <summary>What a client should do by default after a connection closed with a given code.</summary>
public enum CloseReaction
{
    /// <summary>Do not reconnect: retrying unchanged cannot succeed, or the close was wanted.</summary>
    Stop,

    /// <summary>Reconnect after a short random delay (a planned restart or a departing peer).</summary>
    ReconnectSoon,

    /// <summary>Reconnect with exponential backoff and jitter (failures whose end is unknown).</summary>
    ReconnectWithBackoff,

    /// <summary>The code is the application's own; its configuration decides (Lifeline falls back to backoff).</summary>
    ApplicationDecides,
}
