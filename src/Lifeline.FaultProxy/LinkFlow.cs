namespace Lifeline.FaultProxy;

/// <summary>
/// One direction of one link, as the toxics that pace a flow (bandwidth) see it: the link's pump makes it current for its
/// async flow (which its delay line inherits), so a toxic instance shared by many links keeps a schedule per flow.
/// </summary>
internal sealed class LinkFlow
{
    private static readonly AsyncLocal<LinkFlow?> CurrentFlow = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<object, long> _nextDue = [];

    /// <summary>The flow the calling code forwards bytes for; null outside a link's pump (a toxic used on its own).</summary>
    public static LinkFlow? Current => CurrentFlow.Value;

    /// <summary>Makes a new flow current for the calling async flow (a pump, at its start).</summary>
    public static void Enter() => CurrentFlow.Value = new LinkFlow();

    /// <summary>
    /// Books <paramref name="cost"/> (timestamp ticks) on <paramref name="pacer"/>'s schedule for this flow and returns the
    /// timestamp its bytes may leave at: after the bytes booked before them, and not before <paramref name="now"/>.
    /// </summary>
    public long Book(object pacer, long now, long cost)
    {
        lock (_lock)
        {
            var due = Math.Max(now, _nextDue.GetValueOrDefault(pacer)) + cost;
            _nextDue[pacer] = due;
            return due;
        }
    }
}
