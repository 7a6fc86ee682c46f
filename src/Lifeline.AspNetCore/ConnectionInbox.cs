using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;
using System.Threading.Tasks.Sources;

namespace Lifeline.AspNetCore;

/// <summary>
/// <see cref="LifelineConnection.Messages"/>: the received messages, bounded, with one writer (the receive loop) and
/// any number of readers. It reads like a bounded channel (messages stay readable after <see cref="Complete"/>,
/// <see cref="Completion"/> ends once they are read, a wait ends with a cancellation of its token), but an idle
/// connection pays for one small object and an empty queue instead of the ~800 bytes of a bounded channel (channel,
/// reader, writer, deque, completion source and four waiter objects made up front). A reader parked in
/// <see cref="WaitToReadAsync"/> uses this object itself as its awaitable, reused from one wait to the next, and a wait
/// on the connection's <paramref name="closing"/> token (what a handler usually passes) does not register with it: the
/// connection calls <see cref="ClosingCancelled"/> instead, which saves a registration (~150 bytes) per idle connection.
/// <see cref="ReadAllAsync"/>, what a handler usually reads with, parks on the same wait (ConnectionInbox.ReadAll.cs).
/// </summary>
/// <remarks>
/// Thread-safe: every member takes the lock of <c>_items</c>. Waiters complete with their continuations on the thread
/// pool, so waking them under the lock is safe.
/// </remarks>
internal sealed partial class ConnectionInbox(int capacity, long capacityBytes, CancellationToken closing) : ChannelReader<LifelineMessage>, IValueTaskSource<bool>
{
    private readonly Queue<LifelineMessage> _items = new(); // also the lock
    private long _bytes; // payload bytes of _items
    private bool _completed;
    private TaskCompletionSource? _completion; // only if somebody asks for Completion before the end
    private TaskCompletionSource? _room; // the writer waits for a reader to make room

    // The reusable wait: taken by WaitToReadAsync or a ReadAllAsync loop until its result is read; parked until a write,
    // the end or its token wakes it.
    private ManualResetValueTaskSourceCore<bool> _wait = new() { RunContinuationsAsynchronously = true };
    private bool _waitTaken;
    private bool _waitParked;
    private CancellationToken _waitToken;
    private CancellationTokenRegistration _waitCancellation;
    private bool _waitTakes; // parked for ReadAllAsync: the write that ends it hands over its message in _handed
    private LifelineMessage? _handed;

    // Readers that wait while the reusable wait is taken (a second concurrent reader: rare), all woken together.
    private TaskCompletionSource<bool>? _otherWaits;

    public override bool CanCount => true;

    /// <summary>Whether a reader is parked on the reusable wait (for tests that must reach that state before acting).</summary>
    internal bool HasParkedReader
    {
        get
        {
            lock (_items)
            {
                return _waitParked;
            }
        }
    }

    public override bool CanPeek => true;

    public override int Count
    {
        get
        {
            lock (_items)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>Completes once the writer has completed and every message has been read.</summary>
    public override Task Completion
    {
        get
        {
            lock (_items)
            {
                if (_completion is null && _completed && _items.Count == 0)
                {
                    return Task.CompletedTask;
                }

                return (_completion ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
        }
    }

    /// <summary>The writer: adds a message when there is room; false when the inbox is full (or completed).</summary>
    public bool TryWrite(LifelineMessage message) => Write(message, beyondTheBound: false);

    /// <summary>
    /// Adds a message even when the inbox is full (false only once it is completed). For the last message before the
    /// client's Close: the receive loop cannot wait for room then, and the handler still reads what arrived before it.
    /// </summary>
    public bool WriteBeyondTheBound(LifelineMessage message) => Write(message, beyondTheBound: true);

    private bool Write(LifelineMessage message, bool beyondTheBound)
    {
        lock (_items)
        {
            if (_completed || (!beyondTheBound && !HasRoomLocked(message.Data.Length)))
            {
                return false;
            }

            if (_waitParked && _waitTakes)
            {
                // A ReadAllAsync loop is parked here: it gets the message directly (as the channel hands an item to
                // a reader blocked in ReadAsync), and nobody else is woken for it.
                _handed = message;
                WakeParkedLocked(true);
                return true;
            }

            _items.Enqueue(message);
            _bytes += message.Data.Length;
            WakeReadersLocked(true);
            return true;
        }
    }

    /// <summary>
    /// The writer, after <see cref="TryWrite"/> found the inbox full: completes when a reader has taken a message (or
    /// the inbox is completed); cancelled with <paramref name="cancellationToken"/>.
    /// </summary>
    public Task WaitForRoomAsync(int length, CancellationToken cancellationToken)
    {
        lock (_items)
        {
            if (_completed || HasRoomLocked(length))
            {
                return Task.CompletedTask;
            }

            return (_room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>No more messages will be written; those already here stay readable. Safe to call more than once.</summary>
    public void Complete()
    {
        lock (_items)
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            WakeReadersLocked(false); // a reader waits only while the inbox is empty: nothing is left to read
            WakeWriterLocked();
            if (_items.Count == 0)
            {
                _completion?.TrySetResult();
            }
        }
    }

    public override bool TryRead([MaybeNullWhen(false)] out LifelineMessage item)
    {
        lock (_items)
        {
            if (!_items.TryDequeue(out item))
            {
                return false;
            }

            _bytes -= item.Data.Length;

            WakeWriterLocked();
            if (_completed && _items.Count == 0)
            {
                _completion?.TrySetResult();
            }

            return true;
        }
    }

    public override bool TryPeek([MaybeNullWhen(false)] out LifelineMessage item)
    {
        lock (_items)
        {
            return _items.TryPeek(out item);
        }
    }

    /// <summary>True when a message can be read, false once the inbox is completed and empty.</summary>
    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        lock (_items)
        {
            // Checked under the lock: a wait on Closing parked after this check is woken by ClosingCancelled.
            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<bool>(cancellationToken);
            }

            if (_items.Count > 0)
            {
                return new ValueTask<bool>(true);
            }

            if (_completed)
            {
                return new ValueTask<bool>(false);
            }

            if (_waitTaken)
            {
                var others = _otherWaits ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                return new ValueTask<bool>(others.Task.WaitAsync(cancellationToken));
            }

            ParkLocked(takes: false, cancellationToken);
            return new ValueTask<bool>(this, _wait.Version);
        }
    }

    /// <summary>The connection cancelled its Closing token: a wait on it, which registered nothing, ends cancelled.</summary>
    public void ClosingCancelled() => CancelWait(this, closing);

    bool IValueTaskSource<bool>.GetResult(short token) => EndWait(token, out _);

    /// <summary>Takes the reusable wait; the caller has checked that it is free and that nothing can be read yet.</summary>
    private void ParkLocked(bool takes, CancellationToken cancellationToken)
    {
        _waitTaken = true;
        _waitParked = true;
        _waitTakes = takes;
        _waitToken = cancellationToken;
        if (cancellationToken != closing)
        {
            // Registered under the lock, so that a write cannot end the wait before the registration is stored (and
            // leave it behind). A token cancelled meanwhile runs CancelWait here at once: the lock is reentrant.
            _waitCancellation = cancellationToken.UnsafeRegister(CancelWait, this);
        }
    }

    /// <summary>The result of the reusable wait (throws when it was cancelled); frees it for the next wait.</summary>
    private bool EndWait(short token, out LifelineMessage? handed)
    {
        handed = null;
        try
        {
            return _wait.GetResult(token);
        }
        finally
        {
            lock (_items)
            {
                if (!_waitParked && token == _wait.Version)
                {
                    handed = _handed;
                    _handed = null;
                    _waitTakes = false;
                    _wait.Reset();
                    _waitTaken = false;
                }
            }
        }
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _wait.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _wait.OnCompleted(continuation, state, token, flags);

    private static void CancelWait(object? state, CancellationToken token)
    {
        var inbox = (ConnectionInbox)state!;
        lock (inbox._items)
        {
            // The token may belong to an earlier wait that has ended; any wait on a cancelled token ends too.
            if (inbox._waitParked && inbox._waitToken == token)
            {
                inbox._waitParked = false;
                inbox._wait.SetException(new OperationCanceledException(token));
            }
        }
    }

    private void WakeReadersLocked(bool canRead)
    {
        WakeParkedLocked(canRead);
        _otherWaits?.TrySetResult(canRead);
        _otherWaits = null;
    }

    private void WakeParkedLocked(bool canRead)
    {
        if (_waitParked)
        {
            _waitParked = false;
            _waitCancellation.Unregister(); // never waits for a running CancelWait, which then finds nothing parked
            _waitCancellation = default;
            _wait.SetResult(canRead);
        }
    }

    // One message always fits an empty inbox, however large (the receive loop has already refused one over the limit).
    private bool HasRoomLocked(int length) => _items.Count == 0 || (_items.Count < capacity && _bytes + length <= capacityBytes);

    private void WakeWriterLocked()
    {
        _room?.TrySetResult();
        _room = null;
    }
}
