using System.Globalization;

namespace Lifeline.Session;

/// <summary>
/// A run of consecutive message sequence numbers: <see cref="First"/> to <see cref="Last"/> inclusive, <see cref="Count"/>
/// messages. Used to say what a session lost. An empty range has <see cref="Count"/> 0.
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
public readonly record struct SequenceRange
{
    /// <summary>Creates a range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative value, or a range that passes <see cref="long.MaxValue"/>.</exception>
    public SequenceRange(long first, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > 0 && first > long.MaxValue - count + 1)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "The range passes the largest sequence number.");
        }

        First = count == 0 ? 0 : first;
        Count = count;
    }

    /// <summary>The empty range.</summary>
    public static SequenceRange Empty => default;

    /// <summary>The first sequence number in the range (0 when empty).</summary>
    public long First { get; }

    /// <summary>How many sequence numbers the range holds.</summary>
    public long Count { get; }

    /// <summary>The last sequence number in the range (<see cref="First"/> - 1 when empty).</summary>
    public long Last => First + Count - 1;

    /// <summary>True when the range holds no sequence number.</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>The range from <paramref name="first"/> to <paramref name="last"/> inclusive; empty when last &lt; first.</summary>
    public static SequenceRange FromBounds(long first, long last) => last < first ? Empty : new SequenceRange(first, last - first + 1);

    /// <summary>"first-last (count)" or "none".</summary>
    public override string ToString() => IsEmpty ? "none" : string.Create(CultureInfo.InvariantCulture, $"{First}-{Last} ({Count})");
}
