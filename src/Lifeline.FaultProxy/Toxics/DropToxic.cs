namespace Lifeline.FaultProxy.Toxics;

/// <summary>
/// Discards every byte while it is in place, and the stream carries on without them once it is removed. No real
/// network does this to a TCP stream (TCP retransmits until it gives up): use it to test how a receiver copes with a
/// corrupted stream, not to imitate a network outage; for that use <see cref="BlackHoleToxic"/>.
/// </summary>
public sealed class DropToxic : IToxic
{
    private long _droppedBytes;

    /// <inheritdoc />
    public string Name => "drop";

    /// <summary>
    /// The bytes discarded so far. A toxic applies to bytes the proxy processes while it is in place, so a test waits
    /// on this (not on a delay) before it removes the toxic.
    /// </summary>
    public long DroppedBytes => Interlocked.Read(ref _droppedBytes);

    /// <inheritdoc />
    public ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken)
    {
        Interlocked.Add(ref _droppedBytes, chunk.Length);
        return ValueTask.CompletedTask;
    }
}
