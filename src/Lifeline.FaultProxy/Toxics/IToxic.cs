namespace Lifeline.FaultProxy.Toxics;

/// <summary>
/// One fault applied to the bytes flowing one way through a link. Toxics form a chain: each receives a
/// chunk and passes zero or more chunks on to <c>forward</c>.
/// </summary>
/// <remarks>A toxic instance may be shared by many links and both directions at once; it must be thread-safe.</remarks>
public interface IToxic
{
    /// <summary>A short name for logs and the CLI, e.g. "latency".</summary>
    string Name { get; }

    /// <summary>Processes one chunk read from the source side.</summary>
    ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken);
}
