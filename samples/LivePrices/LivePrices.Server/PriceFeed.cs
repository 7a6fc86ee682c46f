namespace LivePrices.Server;

/// <summary>One published tick: its number in the feed and its text (<c>&lt;seq&gt; &lt;symbol&gt; &lt;price&gt;</c>).</summary>
internal sealed record Tick(long Sequence, string Text);

/// <summary>
/// The price feed: ticks numbered 1, 2, 3... and the most recent of them, so that each session can send them from its
/// own position (kept in its state) whenever it runs: live, after a resume in the same process, or in the next one.
/// </summary>
internal sealed class PriceFeed
{
    /// <summary>How many recent ticks are kept (and saved at a graceful stop). 4096 ticks: 17 minutes at 250 ms.</summary>
    public const int HistoryCapacity = 4096;

    private readonly Lock _lock = new();
    private readonly Tick?[] _history = new Tick?[HistoryCapacity];
    private long _next = 1;
    private int _count;
    private TaskCompletionSource _published = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The number the next tick gets.</summary>
    public long Next
    {
        get
        {
            lock (_lock)
            {
                return _next;
            }
        }
    }

    /// <summary>Publishes a tick with the next number; <paramref name="format"/> gets the number and returns the text.</summary>
    public Tick Publish(Func<long, string> format)
    {
        TaskCompletionSource published;
        Tick tick;
        lock (_lock)
        {
            tick = new Tick(_next, format(_next));
            _history[_next % HistoryCapacity] = tick;
            _next++;
            _count = Math.Min(_count + 1, HistoryCapacity);
            published = _published;
            _published = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        published.TrySetResult();
        return tick;
    }

    /// <summary>
    /// Up to <paramref name="max"/> ticks from number <paramref name="from"/> on. False when ticks from <paramref name="from"/>
    /// are no longer kept (or the feed is behind it): <paramref name="resumeAt"/> is then where it can carry on.
    /// </summary>
    public bool TryRead(long from, int max, out List<Tick> ticks, out long resumeAt)
    {
        ticks = [];
        lock (_lock)
        {
            var oldest = _next - _count;
            if (from < oldest || from > _next)
            {
                resumeAt = from < oldest ? oldest : _next;
                return false;
            }

            for (var seq = from; seq < _next && ticks.Count < max; seq++)
            {
                ticks.Add(_history[seq % HistoryCapacity]!);
            }

            resumeAt = from + ticks.Count;
            return true;
        }
    }

    /// <summary>Completes once a tick numbered <paramref name="from"/> or later has been published.</summary>
    public Task WaitForAsync(long from, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return _next > from ? Task.CompletedTask : _published.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>The kept ticks, oldest first.</summary>
    public List<Tick> Recent()
    {
        lock (_lock)
        {
            var ticks = new List<Tick>(_count);
            for (var seq = _next - _count; seq < _next; seq++)
            {
                ticks.Add(_history[seq % HistoryCapacity]!);
            }

            return ticks;
        }
    }

    /// <summary>Starts the feed at <paramref name="next"/> with the recent ticks saved before (numbered below it).</summary>
    public void Restore(long next, IEnumerable<Tick> recent)
    {
        lock (_lock)
        {
            _next = next;
            Array.Clear(_history);
            foreach (var tick in recent.Where(t => t.Sequence < next && t.Sequence >= next - HistoryCapacity))
            {
                _history[tick.Sequence % HistoryCapacity] = tick;
            }

            // Keep the unbroken run that ends at next - 1.
            _count = 0;
            while (_count < HistoryCapacity && next - 1 - _count >= 1 && _history[(next - 1 - _count) % HistoryCapacity]?.Sequence == next - 1 - _count)
            {
                _count++;
            }
        }
    }
}
