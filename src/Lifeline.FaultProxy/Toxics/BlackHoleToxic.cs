namespace Lifeline.FaultProxy.Toxics;

/// <summary>
/// Swallows every byte without a sound: the link stays open, nothing arrives. This is what a dead peer
/// behind a NAT or a silently dropping load balancer looks like; only keep-alive pings can find it.
/// </summary>
public sealed class BlackHoleToxic : IToxic
{
    /// <inheritdoc />
    public string Name => "blackhole";

    /// <inheritdoc />
    public ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken) =>
        ValueTask.CompletedTask;
}
