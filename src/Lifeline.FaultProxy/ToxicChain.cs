using System.Collections.Immutable;
using Lifeline.FaultProxy.Toxics;

namespace Lifeline.FaultProxy;

/// <summary>The toxics applied to one direction, replaced atomically so that pumps read it without locks.</summary>
internal sealed class ToxicChain
{
    private ImmutableArray<IToxic> _toxics = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // ImmutableArray wraps one array reference, so reading the field is atomic; writers swap it with Update.
    public ImmutableArray<IToxic> Toxics => _toxics;

    /// <summary>Completes at the next change of the chain: read it before <see cref="Toxics"/> so no change is missed.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>True when the chain holds a black hole: data must wait before it, not run through it.</summary>
    public static bool Holds(ImmutableArray<IToxic> toxics) => toxics.Any(toxic => toxic is BlackHoleToxic);

    /// <summary>The delay the chain's latency toxics give the next chunk (the proxy applies it in a <see cref="DelayLine"/>).</summary>
    public static TimeSpan NextDelay(ImmutableArray<IToxic> toxics)
    {
        var delay = TimeSpan.Zero;
        foreach (var toxic in toxics)
        {
            if (toxic is LatencyToxic latency)
            {
                delay += latency.NextDelay();
            }
        }

        return delay;
    }

    /// <summary>The chain without its latency toxics, whose delay the proxy has applied already.</summary>
    public static ImmutableArray<IToxic> WithoutLatency(ImmutableArray<IToxic> toxics) =>
        toxics.Any(toxic => toxic is LatencyToxic) ? toxics.RemoveAll(toxic => toxic is LatencyToxic) : toxics;

    public void Add(IToxic toxic)
    {
        ImmutableInterlocked.Update(ref _toxics, list => list.Add(toxic));
        SignalChange();
    }

    public bool Remove(IToxic toxic)
    {
        var removed = false;
        ImmutableInterlocked.Update(ref _toxics, list =>
        {
            var next = list.Remove(toxic);
            removed = next.Length != list.Length;
            return next;
        });
        SignalChange();
        return removed;
    }

    public void Clear()
    {
        ImmutableInterlocked.Update(ref _toxics, _ => []);
        SignalChange();
    }

    private void SignalChange() =>
        Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Runs a chunk through the proxy-wide toxics, then the link's own, then writes it.</summary>
    public static ValueTask RunAsync(ImmutableArray<IToxic> first, ImmutableArray<IToxic> second, ReadOnlyMemory<byte> chunk,
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> write, CancellationToken cancellationToken)
    {
        if (first.IsEmpty && second.IsEmpty)
        {
            return write(chunk, cancellationToken);
        }

        var all = first.AddRange(second);
        return Step(0, chunk, cancellationToken);

        ValueTask Step(int index, ReadOnlyMemory<byte> data, CancellationToken token) =>
            index == all.Length
                ? write(data, token)
                : all[index].ProcessAsync(data, (next, t) => Step(index + 1, next, t), token);
    }
}

/// <summary>The two chains of a proxy or a link, one per direction.</summary>
internal sealed class DirectionalToxics
{
    public ToxicChain Upstream { get; } = new();

    public ToxicChain Downstream { get; } = new();

    public ImmutableArray<IToxic> For(Direction direction) => Chain(direction).Toxics;

    public Task ChangedFor(Direction direction) => Chain(direction).Changed;

    private ToxicChain Chain(Direction direction) => direction == Direction.Upstream ? Upstream : Downstream;

    public void Add(IToxic toxic, Direction direction)
    {
        ArgumentNullException.ThrowIfNull(toxic);
        if (direction.HasFlag(Direction.Upstream))
        {
            Upstream.Add(toxic);
        }

        if (direction.HasFlag(Direction.Downstream))
        {
            Downstream.Add(toxic);
        }
    }

    public bool Remove(IToxic toxic) => Upstream.Remove(toxic) | Downstream.Remove(toxic);

    public void Clear()
    {
        Upstream.Clear();
        Downstream.Clear();
    }
}
