using Lifeline.Client;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>Records a client's state changes and lets a test wait, with a bound, for the next one that matches.</summary>
internal sealed class StateRecorder
{
    private readonly Lock _lock = new();
    private readonly List<LifelineStateChangedEventArgs> _events = [];
    private readonly List<(Func<LifelineStateChangedEventArgs, bool> Match, int From, TaskCompletionSource<LifelineStateChangedEventArgs> Done)> _waiters = [];
    private int _cursor;

    public StateRecorder(LifelineClient client)
    {
        client.StateChanged += (_, change) =>
        {
            lock (_lock)
            {
                _events.Add(change);
                var index = _events.Count - 1;
                foreach (var waiter in _waiters.ToArray())
                {
                    if (index >= waiter.From && waiter.Match(change))
                    {
                        _waiters.Remove(waiter);
                        waiter.Done.TrySetResult(change);
                    }
                }
            }
        };
    }

    public IReadOnlyList<LifelineStateChangedEventArgs> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Waits for the first event after the previous match that satisfies <paramref name="match"/>.</summary>
    public async Task<LifelineStateChangedEventArgs> NextAsync(Func<LifelineStateChangedEventArgs, bool> match, TimeSpan? timeout = null)
    {
        TaskCompletionSource<LifelineStateChangedEventArgs> done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            for (var i = _cursor; i < _events.Count; i++)
            {
                if (match(_events[i]))
                {
                    _cursor = i + 1;
                    return _events[i];
                }
            }

            _waiters.Add((match, _cursor, done));
        }

        try
        {
            var result = await done.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(15));
            lock (_lock)
            {
                _cursor = _events.IndexOf(result) + 1;
            }

            return result;
        }
        catch (TimeoutException)
        {
            throw new TimeoutException("No matching state change arrived. Seen: " + string.Join(", ", Events.Select(e =>
                $"{e.Current}({e.Close?.ToString() ?? e.Failure?.Description})")));
        }
    }

    public Task<LifelineStateChangedEventArgs> NextAsync(LifelineClientState state, TimeSpan? timeout = null) =>
        NextAsync(e => e.Current == state, timeout);
}
