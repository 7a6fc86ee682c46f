using System.Threading.Channels;
using System.Threading.Tasks.Sources;

namespace Lifeline.AspNetCore;

// ReadAllAsync without an async iterator. The channel's iterator (and the box it is suspended in) costs ~216 bytes for
// as long as a handler sits in `await foreach` on an idle connection; here that is one small object whose wait is the
// inbox's reusable one, and the write that ends the wait hands it the message directly.
internal sealed partial class ConnectionInbox
{
    /// <summary>Reads as <see cref="ChannelReader{T}.ReadAllAsync"/> does: waits with the token, then takes every message there, and again.</summary>
    public override IAsyncEnumerable<LifelineMessage> ReadAllAsync(CancellationToken cancellationToken = default) =>
        new AllMessages(this, cancellationToken);

    /// <summary>
    /// Parks the reusable wait for <paramref name="reader"/> when nothing can be read yet, so that the next write hands
    /// it the message (it reads it with <see cref="EndWait"/>). False when a message, the end or the cancellation is
    /// already there, or the wait is in use by another reader: the caller then waits the general way.
    /// </summary>
    private bool TryParkReader(IValueTaskSource<bool> reader, CancellationToken cancellationToken, out ValueTask<bool> parked)
    {
        lock (_items)
        {
            if (cancellationToken.IsCancellationRequested || _items.Count > 0 || _completed || _waitTaken)
            {
                parked = default;
                return false;
            }

            ParkLocked(takes: true, cancellationToken);
            parked = new ValueTask<bool>(reader, _wait.Version);
            return true;
        }
    }

    private sealed class AllMessages(ConnectionInbox inbox, CancellationToken cancellationToken) : IAsyncEnumerable<LifelineMessage>
    {
        public IAsyncEnumerator<LifelineMessage> GetAsyncEnumerator(CancellationToken enumeratorToken = default)
        {
            // Both tokens count, as with an async iterator's [EnumeratorCancellation].
            if (!enumeratorToken.CanBeCanceled || enumeratorToken == cancellationToken)
            {
                return new MessageReader(inbox, null, cancellationToken);
            }

            if (!cancellationToken.CanBeCanceled)
            {
                return new MessageReader(inbox, null, enumeratorToken);
            }

            var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, enumeratorToken);
            return new MessageReader(inbox, linked, linked.Token);
        }
    }

    private sealed class MessageReader(ConnectionInbox inbox, CancellationTokenSource? linked, CancellationToken cancellationToken)
        : IAsyncEnumerator<LifelineMessage>, IValueTaskSource<bool>
    {
        private bool _draining; // a wait said there are messages: take them all before waiting (and checking the token) again

        public LifelineMessage Current { get; private set; } = null!;

        public ValueTask<bool> MoveNextAsync()
        {
            if (_draining && inbox.TryRead(out var message))
            {
                Current = message;
                return new ValueTask<bool>(true);
            }

            _draining = false;
            return inbox.TryParkReader(this, cancellationToken, out var parked) ? parked : WaitThenReadAsync();
        }

        public ValueTask DisposeAsync()
        {
            linked?.Dispose();
            return default;
        }

        bool IValueTaskSource<bool>.GetResult(short token)
        {
            if (!inbox.EndWait(token, out var handed))
            {
                return false;
            }

            Current = handed!;
            _draining = true;
            return true;
        }

        ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => inbox._wait.GetStatus(token);

        void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            inbox._wait.OnCompleted(continuation, state, token, flags);

        // Something is there already (a message, the end, the cancellation), or another reader holds the reusable wait.
        private async ValueTask<bool> WaitThenReadAsync()
        {
            while (await inbox.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (inbox.TryRead(out var message))
                {
                    Current = message;
                    _draining = true;
                    return true;
                }
            }

            return false;
        }
    }
}
