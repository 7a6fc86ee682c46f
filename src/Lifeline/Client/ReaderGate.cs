namespace Lifeline.Client;

/// <summary>
/// Lets one reader at a time in, served in turn. Getting in when nobody is inside or waiting costs one interlocked
/// operation (the per-message path of <see cref="LifelineClient.ReceiveAsync"/>); only readers that must wait use the
/// semaphore, which is created the first time one does (an idle client holds none). The receive loop enters it too,
/// for a moment, to take back the socket a reader kept between its reads.
/// </summary>
internal sealed class ReaderGate
{
    // The reader inside plus the readers waiting for their turn.
    private int _count;
    private SemaphoreSlim? _turns;

    /// <summary>Enters when nobody is inside or waiting; never waits.</summary>
    public bool TryEnter() => Interlocked.CompareExchange(ref _count, 1, 0) == 0;

    /// <summary>Enters, waiting for the readers ahead. A cancelled wait leaves the gate as if it had never been asked.</summary>
    public ValueTask EnterAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            return default;
        }

        return WaitForTurnAsync(cancellationToken);
    }

    /// <summary>Leaves; the next reader waiting (if any) gets its turn.</summary>
    public void Exit()
    {
        if (Interlocked.Decrement(ref _count) > 0)
        {
            Turns.Release();
        }
    }

    private SemaphoreSlim Turns => LazyInitializer.EnsureInitialized(ref _turns, static () => new SemaphoreSlim(0));

    private async ValueTask WaitForTurnAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Turns.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // This reader is still counted, and the reader ahead will release one turn for it: take that turn when
            // it comes and pass it straight on, so the readers behind are not left waiting.
            _ = PassTurnOnAsync();
            throw;
        }
    }

    private async Task PassTurnOnAsync()
    {
        await Turns.WaitAsync().ConfigureAwait(false);
        Exit();
    }
}
