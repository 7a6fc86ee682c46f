namespace Lifeline.AspNetCore;

/// <summary>
/// A one-shot signal whose task exists only if somebody waits before it is set: most connections end without anybody
/// waiting on a given signal, so they never allocate one. Not thread-safe by itself: the owner calls every member under
/// its own lock (setting completes waiters asynchronously, so that is safe under the lock).
/// </summary>
internal struct LazySignal
{
    private TaskCompletionSource? _waiters;

    public bool IsSetLocked { readonly get; private set; }

    public Task WaitLocked() =>
        IsSetLocked ? Task.CompletedTask : (_waiters ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public void SetLocked()
    {
        IsSetLocked = true;
        _waiters?.TrySetResult();
    }
}
