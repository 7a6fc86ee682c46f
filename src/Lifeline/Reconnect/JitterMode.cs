namespace Lifeline.Reconnect;

/// <summary>How randomness is mixed into the exponential backoff.</summary>
public enum JitterMode
{
    /// <summary>A uniform delay between zero and the capped exponential value (AWS "full jitter"). The default.</summary>
    Full,

    /// <summary>A uniform delay between the base and three times the previous delay, capped ("decorrelated jitter").</summary>
    Decorrelated,

    /// <summary>No randomness: the capped exponential value itself. Only for tests and single clients.</summary>
    None,
}
