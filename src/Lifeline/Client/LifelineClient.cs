using System.Net.WebSockets;
using System.Threading.Channels;
using Lifeline.CloseCodes;
using Lifeline.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lifeline.Client;

/// <summary>
/// A WebSocket client that stays connected the way the close codes say it should: it reconnects after 1006
/// with exponential backoff, comes back quickly after 1012, stops after 1000 or 1008, detects dead links with
/// ping/pong, and queues sends while it is down. Built on <see cref="ClientWebSocket"/>.
/// </summary>
/// <remarks>
/// Thread-safety: every public member may be called from any thread. Sends are written in the order they were
/// accepted: straight to the socket when nothing is queued ahead (through a write buffer that gathers the frames of a
/// sender that streams), else by the queue's writer. State changes happen
/// under one lock; <see cref="StateChanged"/> handlers and the hooks run off the I/O loop, and their exceptions are
/// logged, never fatal. A client runs once: after <see cref="LifelineClientState.Closed"/> create a new one.
/// </remarks>
public sealed partial class LifelineClient : IAsyncDisposable, ISendQueueOwner
{
    private readonly LifelineClientOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ClientInstruments _metrics;
    private readonly Lock _stateLock = new();
    private readonly SendQueue _queue;
    private readonly ReceiveBuffer _incoming;
    private MessageReader? _messages; // created by the first look at Messages

    private SemaphoreSlim? _sendLock; // serializes writes to the socket; created by the first write (see SendLock)
    // _stopRequested is cancelled as soon as a stop is asked for (hooks and waits give up); _aborting is set when the
    // stop gives up on grace (not connected, or the socket did not close within CloseTimeout) and ends whatever is left
    // (see CancelStepAsync). Guarded by _stateLock.
    private readonly CancellationTokenSource _stopRequested = new();
    private bool _aborting;
    // Created when someone waits for them, so that a running client holds none of them. Guarded by _stateLock.
    private TaskCompletionSource? _stopped; // by StopAsync or DisposeAsync
    private TaskCompletionSource? _firstConnected; // by StartAsync, dropped once the first connection opened
    private TaskCompletionSource? _closed; // by Completion
    private bool _closeDelivered; // Completion's moment has come: every StateChanged handler has seen Closed
    // State changes waiting for their StateChanged handlers, and the pump that runs them: both exist only while there
    // are changes to deliver (an idle client holds neither). Guarded by _stateLock.
    private Queue<LifelineStateChangedEventArgs>? _events;
    private Task _eventPump = Task.CompletedTask;
    private bool _pumping;
    private LifelineClientState _state = LifelineClientState.NotStarted;
    private CloseRecord? _lastClose;
    private ConnectFailure? _lastFailure;
    private (CloseCode Code, string? Reason)? _stopRequest;
    private CancellationTokenSource? _stopDeadline;
    private Task _loop = Task.CompletedTask;
    private int _disposed;

    private long _connects;
    private long _reconnectAttempts;
    private long _sent;
    private long _received; // read ahead by the loop
    private long _receivedByReaders; // read by the application's reader itself
    private long _queuedWhileDown;
    private long _droppedFull;
    private long _droppedStale;
    private long _droppedTooLarge;
    private long _droppedClosed;

    private long ReceivedCount => Interlocked.Read(ref _received) + Volatile.Read(ref _receivedByReaders);

    /// <summary>Creates a client; nothing happens until <see cref="StartAsync"/>.</summary>
    /// <exception cref="ArgumentException">The options are incomplete or inconsistent; the message names the setting.</exception>
    public LifelineClient(LifelineClientOptions options, ILogger<LifelineClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _time = options.TimeProvider;
        _metrics = ClientInstruments.For(options.MeterFactory);
        _queue = new SendQueue(options.SendQueue, this, _stateLock);
        _incoming = new ReceiveBuffer(options.ReceiveCapacity, options.ReceiveCapacityBytes);
        _sessionMode = options.Session is null ? null : new SessionModeState();
        if (_sessionMode is not null)
        {
            _incoming.QueuedItemTaken = OnReadAheadMessageTaken;
        }
    }

    /// <summary>Creates a client for an address with default options.</summary>
    public LifelineClient(Uri uri)
        : this(new LifelineClientOptions { Uri = uri })
    {
    }

    /// <summary>Raised after every state change, in order, off the I/O loop. Handler exceptions are logged.</summary>
    public event EventHandler<LifelineStateChangedEventArgs>? StateChanged;

    /// <summary>The current state.</summary>
    public LifelineClientState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    /// <summary>How the most recent connection ended; null before the first loss.</summary>
    public CloseRecord? LastClose
    {
        get
        {
            lock (_stateLock)
            {
                return _lastClose;
            }
        }
    }

    /// <summary>Why the most recent attempt failed, if it did.</summary>
    public ConnectFailure? LastFailure
    {
        get
        {
            lock (_stateLock)
            {
                return _lastFailure;
            }
        }
    }

    /// <summary>
    /// Received messages, whole and in order, each a copy the application owns (one allocation per message; use
    /// <see cref="ReceiveAsync"/> to read into your own memory without). Completes when the client closes.
    /// </summary>
    public ChannelReader<LifelineMessage> Messages => MessageReader;

    /// <summary>Completes when the client reaches <see cref="LifelineClientState.Closed"/> and every <see cref="StateChanged"/> handler has seen it.</summary>
    public Task Completion
    {
        get
        {
            lock (_stateLock)
            {
                if (_closed is null)
                {
                    _closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    if (_closeDelivered)
                    {
                        _closed.TrySetResult();
                    }
                }

                return _closed.Task;
            }
        }
    }

    /// <summary>The options the client runs with.</summary>
    public LifelineClientOptions Options => _options;

    /// <summary>A snapshot of the counters.</summary>
    public LifelineClientStatistics Statistics => new()
    {
        Connects = Interlocked.Read(ref _connects),
        ReconnectAttempts = Interlocked.Read(ref _reconnectAttempts),
        MessagesSent = Interlocked.Read(ref _sent),
        MessagesReceived = ReceivedCount,
        MessagesQueuedWhileDisconnected = Interlocked.Read(ref _queuedWhileDown),
        MessagesDroppedQueueFull = Interlocked.Read(ref _droppedFull),
        MessagesDroppedStale = Interlocked.Read(ref _droppedStale),
        MessagesDroppedTooLarge = Interlocked.Read(ref _droppedTooLarge),
        MessagesDroppedClosed = Interlocked.Read(ref _droppedClosed),
        QueuedMessages = _queue.Count,
        QueuedBytes = _queue.Bytes,
    };

    /// <summary>Reads received messages until the client closes.</summary>
    public IAsyncEnumerable<LifelineMessage> ReadAllAsync(CancellationToken cancellationToken = default) =>
        MessageReader.ReadAllAsync(cancellationToken);

    // Created on first use; read on every call to Messages, so without a lock once it exists.
    private MessageReader MessageReader =>
        Volatile.Read(ref _messages) ?? LazyInitializer.EnsureInitialized(ref _messages, () => new MessageReader(this, _incoming));

    /// <summary>
    /// Starts connecting and completes once the first connection is open. Failed attempts are retried as the
    /// policy says; if the policy gives up before any connection opened, this throws
    /// <see cref="LifelineConnectException"/>. Cancelling <paramref name="cancellationToken"/> stops waiting
    /// but not the client: it keeps trying until <see cref="StopAsync"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already started, or closed.</exception>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        TaskCompletionSource firstConnected;
        lock (_stateLock)
        {
            if (_state != LifelineClientState.NotStarted)
            {
                throw new InvalidOperationException($"The client was already started (state {_state}); a client runs once, create a new one to start again.");
            }

            firstConnected = _firstConnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            TransitionLocked(LifelineClientState.Connecting, new LifelineStateChangedEventArgs(_state, LifelineClientState.Connecting, _time.GetUtcNow()) { Attempt = 1 });
            _loop = RunAsync(); // it starts on the thread pool (its first await yields): no Task.Run wrapper to keep
        }

        // Nobody may await StartAsync (a client started and left to run): observe its failure so it is not reported as unobserved.
        _ = firstConnected.Task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return firstConnected.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Stops for good. When connected, the messages already queued are written first, then a Close frame with
    /// <paramref name="code"/> (default 1000), and the server's reply is awaited; whatever is not done within
    /// <see cref="LifelineClientOptions.CloseTimeout"/> is aborted. When not connected, connecting and waiting
    /// stop at once and queued messages are dropped (counted in <see cref="LifelineClientStatistics.MessagesDroppedClosed"/>).
    /// From the first call on, every send throws <see cref="LifelineClosedException"/>.
    /// </summary>
    /// <remarks>
    /// Stopping happens once: later calls (and <see cref="DisposeAsync"/>) await the same completion, and their
    /// code and reason are ignored. Cancelling <paramref name="cancellationToken"/> stops waiting, not the stop.
    /// </remarks>
    /// <exception cref="ArgumentException">The code may not be sent (1005, 1006, 1015, reserved) or the reason is over 123 bytes of UTF-8.</exception>
    public Task StopAsync(CloseCode? code = null, string? reason = null, CancellationToken cancellationToken = default)
    {
        var closeCode = code ?? CloseCode.NormalClosure;
        if (!closeCode.CanBeSent)
        {
            throw new ArgumentException(
                $"Close code {closeCode} ({closeCode.Info.GetName(System.Globalization.CultureInfo.InvariantCulture)}) may not be sent by an endpoint; use 1000, 1001, 1008 or a code from 3000-4999.",
                nameof(code));
        }

        CloseReason.ThrowIfInvalid(reason, nameof(reason));
        bool first;
        Task stopped;
        lock (_stateLock)
        {
            stopped = Stopped().Task;
            first = _stopRequest is null;
            if (first)
            {
                _stopRequest = (closeCode, reason);
                _stopDeadline = new CancellationTokenSource(_options.CloseTimeout, _time);
            }
        }

        if (first)
        {
            _ = RunStopAsync();
        }

        return stopped.WaitAsync(cancellationToken);
    }

    private async Task RunStopAsync()
    {
        try
        {
            await StopCoreAsync().ConfigureAwait(false);
        }
        finally
        {
            lock (_stateLock)
            {
                Stopped().TrySetResult();
            }
        }
    }

    // Caller holds the lock.
    private TaskCompletionSource Stopped() => _stopped ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task StopCoreAsync()
    {
        ClientWebSocket? socket;
        lock (_stateLock)
        {
            if (_state == LifelineClientState.NotStarted)
            {
                _stopRequested.Cancel();
                _aborting = true;
                FinishLocked(new CloseRecord { Code = _stopRequest!.Value.Code, Reason = _stopRequest.Value.Reason, Initiator = CloseInitiator.Client, Cause = CloseCause.StoppedBeforeStart, Description = "stopped before it started" }, null);
                return;
            }

            socket = _currentSocket;
        }

        _queue.Complete("The client is stopping (StopAsync or DisposeAsync was called); create a new client to send again.");
        await _stopRequested.CancelAsync().ConfigureAwait(false);
        await CancelStepAsync(aborting: false).ConfigureAwait(false);
        WakeLoop(); // the receive loop reads the server's answer to the Close frame even if the application does not read
        if (socket is null)
        {
            // Not connected: nothing to close gracefully. A connect that completes meanwhile is closed by the loop.
            await CancelStepAsync(aborting: true).ConfigureAwait(false);
        }

        // Connected: the queue's writer writes what is queued, then the Close frame; the receive loop ends with the reply.
        try
        {
            await _loop.WaitAsync(_stopDeadline!.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await CancelStepAsync(aborting: true).ConfigureAwait(false);
            await _loop.ConfigureAwait(false);
        }
    }

    /// <summary>Stops (1000, see <see cref="StopAsync"/>) and releases everything. Safe to call more than once and together with <see cref="StopAsync"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            Task stopped;
            lock (_stateLock)
            {
                stopped = Stopped().Task; // a first DisposeAsync may not have called StopAsync yet
            }

            await stopped.ConfigureAwait(false);
            return;
        }

        await StopAsync().ConfigureAwait(false);
        Task pump;
        lock (_stateLock)
        {
            pump = _eventPump; // Closed is queued by now and is the last change: this pump delivers it
        }

        await pump.ConfigureAwait(false);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>Changes state and queues the event; the only place <see cref="_state"/> is written. Caller holds the lock.</summary>
    private bool TransitionLocked(LifelineClientState next, LifelineStateChangedEventArgs args)
    {
        if (_state == LifelineClientState.Closed)
        {
            return false; // terminal
        }

        _state = next;
        if (args.Close is not null)
        {
            _lastClose = args.Close;
        }

        if (args.Failure is not null)
        {
            _lastFailure = args.Failure;
        }

        (_events ??= new Queue<LifelineStateChangedEventArgs>()).Enqueue(args);
        if (!_pumping)
        {
            _pumping = true;
            _eventPump = Task.Run(PumpEvents);
        }

        return true;
    }

    private void Transition(LifelineClientState next, CloseRecord? close = null, ConnectFailure? failure = null, TimeSpan? delay = null, int? attempt = null, SessionHandshake? session = null)
    {
        lock (_stateLock)
        {
            TransitionLocked(next, new LifelineStateChangedEventArgs(_state, next, _time.GetUtcNow())
            {
                Close = close,
                Failure = failure,
                ReconnectDelay = delay,
                Attempt = attempt,
                SessionResumed = session?.Resumed,
                MessagesReplayedToServer = session is { Resumed: true } resumed ? resumed.ReplayedToServer : null,
                MessagesReplayedFromServer = session is { Resumed: true } resumed2 ? resumed2.ReplayedFromServer : null,
            });
        }
    }

    // Caller holds the lock.
    private void FinishLocked(CloseRecord? close, ConnectFailure? failure)
    {
        TransitionLocked(LifelineClientState.Closed, new LifelineStateChangedEventArgs(_state, LifelineClientState.Closed, _time.GetUtcNow())
        {
            Close = close,
            Failure = failure,
        });
        _queue.Complete($"The client is closed ({close?.ToString() ?? failure?.Description ?? "stopped"}); create a new client to send again.");
        _queue.Clear();
        CompleteIncoming();
        _firstConnected?.TrySetException(new LifelineConnectException(close, failure));
        _firstConnected = null;
    }

    /// <summary>Runs the handlers for each queued change, in order, off the caller's thread; ends when none is left.</summary>
    private void PumpEvents()
    {
        while (true)
        {
            LifelineStateChangedEventArgs? change;
            lock (_stateLock)
            {
                if (_events is null || !_events.TryDequeue(out change))
                {
                    _events = null;
                    _pumping = false; // the next change starts a new pump
                    _eventPump = Task.CompletedTask; // every change was delivered: an idle client keeps no finished pump
                    return;
                }
            }

            // Each handler runs on its own, so one that throws neither stops the others nor the client.
            foreach (var handler in StateChanged?.GetInvocationList() ?? [])
            {
                try
                {
                    ((EventHandler<LifelineStateChangedEventArgs>)handler)(this, change);
                }
#pragma warning disable CA1031 // A user's handler must not kill the client.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Log.CallbackFailed(_logger, nameof(StateChanged), e);
                }
            }

            if (change.Current == LifelineClientState.Closed)
            {
                // Completion follows the last event, so awaiting it means every handler has seen the close.
                TaskCompletionSource? closed;
                lock (_stateLock)
                {
                    _closeDelivered = true;
                    closed = _closed;
                }

                closed?.TrySetResult();
            }
        }
    }

    void ISendQueueOwner.OnDropped(DropReason reason) => OnDropped(reason);

    void ISendQueueOwner.StartWriter() => StartWriter();

    private void OnDropped(DropReason reason, string? detail = null)
    {
        string tag;
        switch (reason)
        {
            case DropReason.QueueFull:
                Interlocked.Increment(ref _droppedFull);
                tag = "queue_full";
                break;
            case DropReason.Stale:
                Interlocked.Increment(ref _droppedStale);
                tag = "stale";
                break;
            case DropReason.TooLarge:
                Interlocked.Increment(ref _droppedTooLarge);
                tag = "too_large";
                break;
            default:
                Interlocked.Increment(ref _droppedClosed);
                tag = "closed";
                break;
        }

        _metrics.MessagesDropped.Add(1, new KeyValuePair<string, object?>("reason", tag));
        Log.MessageDropped(_logger, detail ?? tag);
    }
}
