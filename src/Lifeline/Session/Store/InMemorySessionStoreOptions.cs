namespace Lifeline.Session.Store;

/// <summary>Bounds of the in-memory session store and its drain file.</summary>
public sealed class InMemorySessionStoreOptions
{
    private int _maxSessions = 100_000;
    private long _maxBytes = 256L * 1024 * 1024;
    private TimeSpan _maxFileAge = TimeSpan.FromMinutes(10);

    /// <summary>The most sessions held. Default 100,000. At least 1. A save beyond it throws <see cref="SessionStoreFullException"/>.</summary>
    public int MaxSessions
    {
        get => _maxSessions;
        set => _maxSessions = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>
    /// The most memory held, estimated from payloads, strings and a fixed cost per session. Default 256 MiB. At least 1.
    /// A save beyond it throws <see cref="SessionStoreFullException"/>.
    /// </summary>
    public long MaxBytes
    {
        get => _maxBytes;
        set => _maxBytes = OptionGuard.AtLeast(value, 1L);
    }

    /// <summary>
    /// A drain file written longer ago than this is ignored as stale on load. Default 10 minutes. Positive.
    /// Sessions in a fresh file still expire on their own <see cref="SessionSnapshot.ExpiresAt"/>.
    /// </summary>
    public TimeSpan MaxFileAge
    {
        get => _maxFileAge;
        set => _maxFileAge = OptionGuard.Positive(value);
    }
}
