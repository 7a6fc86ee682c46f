namespace Lifeline.AspNetCore;

/// <summary>
/// At most <c>permits</c> new connections per one-second window, on the server's <see cref="TimeProvider"/> so that
/// tests can drive it with fake time. A fixed window, like the FixedWindowRateLimiter it replaces, without its timer.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class AdmissionRateLimiter(int permits, TimeProvider time)
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);
    private readonly Lock _lock = new();
    private long _windowStart = time.GetTimestamp();
    private int _used;

    public bool TryAcquire()
    {
        lock (_lock)
        {
            if (time.GetElapsedTime(_windowStart) >= Window)
            {
                _windowStart = time.GetTimestamp();
                _used = 0;
            }

            if (_used >= permits)
            {
                return false;
            }

            _used++;
            return true;
        }
    }
}
