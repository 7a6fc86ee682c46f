namespace Lifeline.Client;

/// <summary>Why a queued message was dropped.</summary>
internal enum DropReason
{
    QueueFull,
    Stale,
    Closed,
    TooLarge,
}

/// <summary>What the queue needs of the client: one object rather than two delegates a client would carry for its whole life.</summary>
internal interface ISendQueueOwner
{
    /// <summary>Counts a dropped message.</summary>
    void OnDropped(DropReason reason);

    /// <summary>
    /// Starts the writer off the caller's thread; called under the queue's lock, so it must only queue work. The writer
    /// ends when <see cref="SendQueue.TakeNext"/> says <see cref="TakeResult.Empty"/>, or by <see cref="SendQueue.WriterEnded"/>.
    /// </summary>
    void StartWriter();
}

/// <summary>What <see cref="SendQueue.TakeNext"/> tells the writer.</summary>
internal enum TakeResult
{
    /// <summary>Here is the next message.</summary>
    Message,

    /// <summary>Nothing is queued: the writer ends (the next queued message starts a new one).</summary>
    Empty,

    /// <summary>Nothing is queued and nothing ever will be (a stop): the writer sends the Close frame and ends for good (<see cref="SendQueue.WriterEnded"/>).</summary>
    Completed,
}

/// <summary>
/// The bounded send queue (count and bytes, under one lock), and when its writer runs. The writer runs only while
/// there is something to write and the connection is open for writes (<see cref="Open"/>): it is started by the
/// first message queued (or by <see cref="Open"/>, <see cref="Complete"/>) and ends when the queue is empty, so an
/// idle client holds neither a waiting writer nor a queue; the queue itself exists only while it holds messages.
/// </summary>
/// <remarks>
/// A message larger than the byte bound is still accepted when the queue is empty, so that one message of any
/// size the application may send always gets through. Once <see cref="Complete"/> is called, no message is
/// accepted (waiting senders included): they throw <see cref="LifelineClosedException"/> and release their buffer;
/// what was already queued can still be taken, then <see cref="TakeNext"/> says <see cref="TakeResult.Completed"/>.
/// </remarks>
internal sealed class SendQueue
{
    private readonly SendQueueOptions _options;
    private readonly ISendQueueOwner _owner;
    private readonly Lock _lock;
    private Queue<OutgoingMessage>? _messages;
    private OutgoingMessage? _first;
    private int _count;
    private long _bytes;
    private string? _closedBecause;
    // Senders waiting for room (mode Wait), let in one by one in call order. A linked list so that a cancelled one
    // leaves at once: in a queue it stayed (about 250 bytes) until it reached the front, and a sender that retried with a
    // timeout through a long outage piled them up.
    private LinkedList<SpaceWaiter>? _spaceWaiters;
    private bool _open;
    private bool _writing; // a writer runs, or is queued to run
    private bool _closeTaken; // a writer took the Close step: no writer starts again
    private TaskCompletionSource? _writerEnded; // created when the connection's end waits for the running writer

    /// <param name="options">The bounds and the full mode.</param>
    /// <param name="owner">Counts drops and starts the writer.</param>
    /// <param name="sync">The lock guarding the queue: the client's state lock, so that a client carries one lock less.</param>
    public SendQueue(SendQueueOptions options, ISendQueueOwner owner, Lock sync)
    {
        _options = options;
        _owner = owner;
        _lock = sync;
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Senders waiting for room (mode Wait).</summary>
    public int WaitingSenders
    {
        get
        {
            lock (_lock)
            {
                return _spaceWaiters?.Count ?? 0;
            }
        }
    }

    /// <summary>True once <see cref="Complete"/> was called.</summary>
    public bool IsCompleted
    {
        get
        {
            lock (_lock)
            {
                return _closedBecause is not null;
            }
        }
    }

    /// <summary>
    /// True when a send may bypass the queue and write at once: nothing is queued, no writer runs (so nothing accepted
    /// earlier is still unwritten), and the queue is not completed.
    /// </summary>
    public bool CanWriteDirect
    {
        get
        {
            lock (_lock)
            {
                return _count == 0 && !_writing && _closedBecause is null;
            }
        }
    }

    /// <summary>
    /// Adds a message, or waits, drops or fails as the full mode says. Takes ownership of the message's buffer. With
    /// <paramref name="untilWritten"/>, when the connection takes writes, also waits until the writer wrote it (or the
    /// connection ended first): a sender that awaits each send then finds the queue empty again and writes directly,
    /// rather than keeping the queue busy for good by returning while its message is still queued.
    /// </summary>
    /// <exception cref="LifelineClosedException">The queue was completed (the client is stopping or closed).</exception>
    public async ValueTask EnqueueAsync(OutgoingMessage message, CancellationToken cancellationToken, bool untilWritten = false)
    {
        Task? written = null;
        SpaceWaiter? waiter = null;
        lock (_lock)
        {
            if (_closedBecause is { } why)
            {
                message.Release();
                throw new LifelineClosedException(why);
            }

            // Behind senders already waiting for room: a call made as room frees must not overtake them. (A cancelled
            // waiter leaves the line at once: see the cancellation below.)
            var waitersAhead = _spaceWaiters is { Count: > 0 };
            if (Fits(message) && (!waitersAhead || _options.FullMode != SendQueueFullMode.Wait))
            {
                written = AddLocked(message, untilWritten);
            }
            else
            {
                switch (_options.FullMode)
                {
                    case SendQueueFullMode.Fail:
                        message.Release();
                        throw new SendQueueFullException(
                            $"The send queue is full ({_count} messages, {_bytes} bytes; limits {_options.MaxMessages} and {_options.MaxBytes}). " +
                            "Wait for the connection, raise the limits, or choose SendQueueFullMode.Wait or DropOldest.");
                    case SendQueueFullMode.DropOldest:
                        while (!Fits(message) && _messages is { Count: > 0 } messages)
                        {
                            var oldest = messages.Dequeue();
                            RemoveLocked(oldest);
                            oldest.Release();
                            _owner.OnDropped(DropReason.QueueFull);
                        }

                        written = AddLocked(message, untilWritten);
                        break;

                    default:
                        waiter = new SpaceWaiter(message, untilWritten);
                        (_spaceWaiters ??= new LinkedList<SpaceWaiter>()).AddLast(waiter.Place);
                        break;
                }
            }
        }

        if (waiter is null)
        {
            await written!.ConfigureAwait(false);
            return;
        }

        try
        {
            written = await waiter.LetIn.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            lock (_lock)
            {
                if (!waiter.LetIn.Task.IsCompleted)
                {
                    _spaceWaiters!.Remove(waiter.Place); // still in line: neither let in nor failed by a close
                    LetWaitersInLocked(); // it may have held back others that fit, and later sends behind them
                }
            }

            if (!waiter.LetIn.Task.IsCompletedSuccessfully)
            {
                message.Release(); // never queued (or refused by a close meanwhile)
                throw;
            }

            written = waiter.LetIn.Task.Result; // let in just before the cancellation: it is queued and goes out
        }
        catch (LifelineClosedException)
        {
            message.Release();
            throw;
        }

        await written.ConfigureAwait(false);
    }

    /// <summary>A sender waiting for room in the queue; completed with what it then waits for (see <see cref="AddLocked"/>).</summary>
    private sealed class SpaceWaiter
    {
        public SpaceWaiter(OutgoingMessage message, bool untilWritten)
        {
            Message = message;
            UntilWritten = untilWritten;
            Place = new LinkedListNode<SpaceWaiter>(this);
        }

        public OutgoingMessage Message { get; }

        public bool UntilWritten { get; }

        public TaskCompletionSource<Task> LetIn { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Its place in the line, in it from the call until let in, failed by a close, or cancelled.</summary>
        public LinkedListNode<SpaceWaiter> Place { get; }
    }

    /// <summary>Lets waiting senders in, oldest first, while their messages fit.</summary>
    private void LetWaitersInLocked()
    {
        while (_spaceWaiters?.First is { } first && _closedBecause is null)
        {
            var next = first.Value;
            if (!Fits(next.Message))
            {
                return;
            }

            _spaceWaiters.RemoveFirst();
            next.LetIn.TrySetResult(AddLocked(next.Message, next.UntilWritten));
        }
    }

    /// <summary>
    /// A direct write failed (the connection was lost under it): the message goes first in line, ahead of anything
    /// queued meanwhile, and is written after the next connection. Takes ownership of the message.
    /// </summary>
    /// <exception cref="LifelineClosedException">The queue was completed meanwhile.</exception>
    public void PutFirst(OutgoingMessage message)
    {
        lock (_lock)
        {
            if (_closedBecause is { } why)
            {
                message.Release();
                throw new LifelineClosedException(why);
            }

            _first = message;
            _count++;
            _bytes += message.Length;
        }
    }

    /// <summary>
    /// The connection takes writes from now on: starts the writer when there is something to write, or when
    /// <paramref name="pending"/> (the writer holds a message the last connection did not finish).
    /// </summary>
    public void Open(bool pending)
    {
        lock (_lock)
        {
            _open = true;
            StartWriterLocked(pending);
        }
    }

    /// <summary>
    /// The connection is over: no writer starts until the next <see cref="Open"/>. Returns a task that completes when
    /// the running writer (if any) has ended; the caller cancels the writer's token, then awaits it.
    /// </summary>
    public Task Shut()
    {
        lock (_lock)
        {
            _open = false;
            SettleWrittenLocked();

            return _writing
                ? (_writerEnded ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task
                : Task.CompletedTask;
        }
    }

    /// <summary>
    /// For the writer holding <paramref name="inFlight"/> (taken earlier, not yet written): a direct write that failed
    /// after it was taken (<see cref="PutFirst"/>) was accepted before it, since direct writes happen only while nothing
    /// is queued. Swaps them: the earlier message becomes the one in flight, the other goes first in line after it.
    /// </summary>
    public bool TrySwapWithPutBack(ref OutgoingMessage inFlight)
    {
        lock (_lock)
        {
            if (_first is not { } earlier)
            {
                return false;
            }

            RemoveLocked(earlier);
            _first = inFlight;
            _count++;
            _bytes += inFlight.Length;
            inFlight = earlier;
            return true;
        }
    }

    /// <summary>For the writer: the next message, or why there is none (when <see cref="TakeResult.Empty"/>, the writer must end).</summary>
    public TakeResult TakeNext(out OutgoingMessage? message)
    {
        lock (_lock)
        {
            message = _first;
            if (message is not null)
            {
                _first = null;
            }
            else if (_messages is { Count: > 0 } messages)
            {
                message = messages.Dequeue();
            }

            if (message is not null)
            {
                RemoveLocked(message);
                LetWaitersInLocked();
                return TakeResult.Message;
            }

            _messages = null; // an idle client keeps no queue
            if (_closedBecause is not null)
            {
                _closeTaken = true; // the Close frame is written once, and nothing follows it
                return TakeResult.Completed;
            }

            EndWriterLocked();
            return TakeResult.Empty;
        }
    }

    /// <summary>For the writer: it ended other than by <see cref="TakeResult.Empty"/> (the Close frame was written, or the connection failed under it).</summary>
    public void WriterEnded()
    {
        lock (_lock)
        {
            EndWriterLocked();
        }
    }

    /// <summary>
    /// For the writer: a write failed, so this connection takes no more. Until the next <see cref="Open"/> no writer
    /// starts and no sender waits for a write, and the senders waiting now go on: the messages stay queued for the next
    /// connection (the connection's end, which calls <see cref="Shut"/>, may be a while coming when nobody reads).
    /// </summary>
    public void WriterFailed()
    {
        lock (_lock)
        {
            _open = false;
            SettleWrittenLocked();
            EndWriterLocked();
        }
    }

    /// <summary>
    /// Refuses every later send, and every send waiting for room, with <see cref="LifelineClosedException"/>
    /// carrying <paramref name="reason"/>. Messages already queued stay until taken or <see cref="Clear"/>ed; an open
    /// connection's writer is started to write them and then the Close frame.
    /// </summary>
    public void Complete(string reason)
    {
        lock (_lock)
        {
            if (_closedBecause is not null)
            {
                return;
            }

            _closedBecause = reason;
            while (_spaceWaiters?.First is { } first)
            {
                _spaceWaiters.RemoveFirst();
                first.Value.LetIn.TrySetException(new LifelineClosedException(reason));
            }

            StartWriterLocked(force: false);
        }
    }

    /// <summary>Drops everything still queued (the client closed for good), counting each as dropped.</summary>
    public void Clear()
    {
        var dropped = new List<OutgoingMessage>();
        lock (_lock)
        {
            if (_first is { } first)
            {
                dropped.Add(first);
                _first = null;
            }

            while (_messages is { Count: > 0 } messages)
            {
                dropped.Add(messages.Dequeue());
            }

            foreach (var message in dropped)
            {
                RemoveLocked(message);
            }

            _messages = null;
        }

        foreach (var message in dropped)
        {
            message.Release();
            _owner.OnDropped(DropReason.Closed);
        }
    }

    // An empty queue takes one message of any size: the byte bound limits what piles up, not what can be sent.
    private bool Fits(OutgoingMessage message) =>
        _count == 0 || (_count + 1 <= _options.MaxMessages && _bytes + message.Length <= _options.MaxBytes);

    /// <summary>Queues a message; returns what its sender waits for (its write, when asked and the connection takes writes).</summary>
    private Task AddLocked(OutgoingMessage message, bool untilWritten)
    {
        var written = untilWritten && _open ? message.WaitUntilWritten() : Task.CompletedTask;
        (_messages ??= new Queue<OutgoingMessage>()).Enqueue(message);
        _count++;
        _bytes += message.Length;
        StartWriterLocked(force: false);
        return written;
    }

    private void StartWriterLocked(bool force)
    {
        // Once completed, the writer has the Close frame to write even when nothing is queued.
        if (_open && !_writing && !_closeTaken && (force || _count > 0 || _closedBecause is not null))
        {
            _writing = true;
            _owner.StartWriter();
        }
    }

    // Queued messages will not be written on this connection: their senders go on, as if they had queued while down.
    private void SettleWrittenLocked()
    {
        _first?.SettleWritten();
        if (_messages is { } messages)
        {
            foreach (var message in messages)
            {
                message.SettleWritten();
            }
        }
    }

    private void EndWriterLocked()
    {
        _writing = false;
        var ended = _writerEnded;
        _writerEnded = null;
        ended?.TrySetResult();
    }

    private void RemoveLocked(OutgoingMessage message)
    {
        _count--;
        _bytes -= message.Length;
    }
}
