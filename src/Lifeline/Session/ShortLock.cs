namespace Lifeline.Session;

/// <summary>
/// A lock for sections of a few instructions that a reader takes once per message: <see cref="SpinLock"/> without owner
/// tracking (one interlocked operation to enter, a plain store to leave), behind a scope for <c>using</c>.
/// <see cref="Lock"/> also looks up the thread's id (a thread-local) on every entry, which on the per-message path costs
/// as much as the section it guards. Not reentrant; never wait or call out while holding it.
/// </summary>
internal sealed class ShortLock
{
    private SpinLock _spin = new(enableThreadOwnerTracking: false);

    /// <summary>Enters; dispose the scope to leave (<c>using (gate.Enter()) { ... }</c>).</summary>
    public Scope Enter()
    {
        var taken = false;
        _spin.Enter(ref taken);
        return new Scope(this);
    }

    /// <summary>Held until disposed.</summary>
    public readonly struct Scope(ShortLock owner) : IDisposable
    {
        /// <summary>Leaves the lock.</summary>
        public void Dispose() => owner._spin.Exit(useMemoryBarrier: false);
    }
}
