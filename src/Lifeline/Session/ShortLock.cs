namespace Lifeline.Session;

/// <summary>
/// A lock for sections of a few instructions that a reader takes once per message: one interlocked operation to enter
/// and a plain store to leave. <see cref="Lock"/> also looks up the thread's id (a thread-local) on every entry, which
/// on the per-message path costs as much as the section it guards. Not reentrant; never wait or call out while holding it.
/// </summary>
internal sealed class ShortLock
{
    private int _held;

    /// <summary>Enters; dispose the scope to leave (<c>using (gate.Enter()) { ... }</c>).</summary>
    public Scope Enter()
    {
        if (Interlocked.CompareExchange(ref _held, 1, 0) != 0)
        {
            EnterContended();
        }

        return new Scope(this);
    }

    private void EnterContended()
    {
        var spinner = default(SpinWait);
        do
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }
        while (Volatile.Read(ref _held) != 0 || Interlocked.CompareExchange(ref _held, 1, 0) != 0);
    }

    /// <summary>Held until disposed.</summary>
    public readonly struct Scope(ShortLock owner) : IDisposable
    {
        /// <summary>Leaves the lock.</summary>
        public void Dispose() => Volatile.Write(ref owner._held, 0);
    }
}
