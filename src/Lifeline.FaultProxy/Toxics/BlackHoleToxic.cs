namespace Lifeline.FaultProxy.Toxics;

/// <summary>
/// A network that stopped delivering: while it is in place nothing crosses the link and the proxy stops reading from
/// the sending side, so its TCP window fills and its writes stall, as over a dead path. The bytes held meanwhile (at
/// most one read, 16 KiB, in the proxy, and up to 1 MiB more on its way under a latency toxic; the rest in the sender's
/// TCP buffers) are delivered in order once the toxic is
/// removed, unless the link is cut (reset, FIN) first. A FIN or a reset from either end waits too, and follows once the
/// toxic is removed. This is what a dead peer behind a NAT or a silently dropping
/// load balancer looks like; only keep-alive pings can find it. To discard bytes instead, use <see cref="DropToxic"/>.
/// </summary>
/// <remarks>
/// The proxy recognises this toxic in a chain and holds the data before the chain runs; <see cref="ProcessAsync"/> is
/// therefore only reached when the toxic is used outside a proxy, and then it holds the chunk until cancelled.
/// </remarks>
public sealed class BlackHoleToxic : IToxic
{
    /// <inheritdoc />
    public string Name => "blackhole";

    /// <inheritdoc />
    public async ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken) =>
        await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
}
