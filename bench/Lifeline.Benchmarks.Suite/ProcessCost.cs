using System.Globalization;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// What one process has spent so far: bytes allocated (precise) and thread-pool work items completed. Read before and
/// after a pass of round trips, the difference per round trip shows where a row's cost lies (an extra thread-pool hop
/// reads as one more work item per round trip).
/// </summary>
internal readonly record struct ProcessCost(long Allocated, long WorkItems)
{
    public static ProcessCost Now() => new(GC.GetTotalAllocatedBytes(precise: true), ThreadPool.CompletedWorkItemCount);

    public static ProcessCost Parse(string line)
    {
        var parts = line.Split(' ');
        return new(long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    public static ProcessCost operator -(ProcessCost after, ProcessCost before) =>
        new(after.Allocated - before.Allocated, after.WorkItems - before.WorkItems);

    public override string ToString() => FormattableString.Invariant($"{Allocated} {WorkItems}");
}
