using System.Runtime;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// A stretch of the restart storm during which the clients' process does not collect (a no-GC region), so that no
/// collection pause holds back the reconnect timers of all its clients at once. Real clients each have a heap of their
/// own. In one shared heap (workstation GC, as the echo and throughput scenarios in this process need) the process
/// paused 40-220 ms at every collection of a restart (a probe thread that slept 5 ms at a time saw each pause, and each
/// one at a collection); the 100 ms bucket of upgrades during a pause came out nearly empty and the next one held the
/// timers that fell due meanwhile, which made the peak. When the budget runs out, or something else collects, the
/// runtime collects as usual and ends the region; <see cref="Close"/> then reports the collections, which the storm's
/// table shows beside its peak.
/// </summary>
internal sealed class NoCollectionWindow
{
    private readonly int _collectionsAtStart;

    private NoCollectionWindow(bool opened, int collectionsAtStart)
    {
        Opened = opened;
        _collectionsAtStart = collectionsAtStart;
    }

    /// <summary>False when the runtime refused the region (the process collects as usual throughout).</summary>
    public bool Opened { get; }

    /// <summary>
    /// Collects once, then lets the process allocate up to <paramref name="budget"/> bytes without collecting. Before
    /// the restart begins: the collection that opens the region falls outside the measured time.
    /// </summary>
    public static NoCollectionWindow Open(long budget)
    {
        bool opened;
        try
        {
            opened = GC.TryStartNoGCRegion(budget);
        }
        catch (ArgumentOutOfRangeException)
        {
            opened = false; // larger than this runtime allows: measured as before, and the table says so
        }
        catch (InvalidOperationException)
        {
            opened = false; // a region already open (not this suite's): leave it alone
        }

        return new NoCollectionWindow(opened, GC.CollectionCount(0));
    }

    /// <summary>Ends the region if it still holds; returns the collections since it opened (0: it held throughout).</summary>
    public int Close()
    {
        if (Opened && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
        {
            try
            {
                GC.EndNoGCRegion();
            }
            catch (InvalidOperationException)
            {
                // The region had ended already (its budget ran out, or a collection was induced): counted below.
            }
        }

        return GC.CollectionCount(0) - _collectionsAtStart;
    }
}
