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
/// Thread-safety: every public member may be called from any thread. Sends are queued and written by one loop,
/// in the order they were accepted. State changes happen under one lock; <see cref="StateChanged"/> handlers and
/// the hooks run off the I/O loop, and their exceptions are logged, never fatal. A client runs once: after
/// <see cref="LifelineClientState.Closed"/> create a new one.
/// </remarks>
public sealed partial class LifelineClient : IAsyncDisposable
{
    private readonly LifelineClientOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _stateLock = new();
    private readonly SendQueue _queue;
    private readonly Channel<LifelineMessage> _incoming;
    private readonly Channel<LifelineStateChangedEventArgs> _events =
        Channel.CreateUnbounded<LifelineStateChangedEventArgs>(new UnboundedChannelOptions { SingleReader = true });

    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _firstConnected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _eventPump;
    private LifelineClientState _state = LifelineClientState.NotStarted;
    private CloseRecord? _lastClose;
    private ConnectFailure? _lastFailure;
    private (CloseCode Code, string? Reason)? _stopRequest;
    private Task _loop = Task.CompletedTask;
    private int _disposed;

    private long _connects;
    private long _reconnectAttempts;
    private long _sent;
    private long _received;
    private long _queuedWhileDown;
    private long _droppedFull;
    private long _droppedStale;
    private long _droppedClosed;

    /// <summary>Creates a client; nothing happens until <see cref="StartAsync"/>.</summary>
    /// <exception cref="ArgumentException">The options are incomplete or inconsistent; the message names the setting.</exception>
    public LifelineClient(LifelineClientOptions options, ILogger<LifelineClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _time = options.TimeProvider;
        _queue = new SendQueue(options.SendQueue, OnDropped);
        _incoming = Channel.CreateBounded<LifelineMessage>(new BoundedChannelOptions(options.ReceiveCapacity)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _eventPump = Task.Run(PumpEventsAsync);

        // Nobody may await StartAsync (a client started and left to run): observe its failure so it is not reported as unobserved.
        _ = _firstConnected.Task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
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

    /// <summary>Received messages, whole and in order. Completes when the client closes.</summary>
    public ChannelReader<LifelineMessage> Messages => _incoming.Reader;

    /// <summary>Completes when the client reaches <see cref="LifelineClientState.Closed"/> and every <see cref="StateChanged"/> handler has seen it.</summary>
    public Task Completion => _closed.Task;

    /// <summary>The options the client runs with.</summary>
    public LifelineClientOptions Options => _options;

    /// <summary>A snapshot of the counters.</summary>
    public LifelineClientStatistics Statistics => new()
    {
        Connects = Interlocked.Read(ref _connects),
        ReconnectAttempts = Interlocked.Read(ref _reconnectAttempts),
        MessagesSent = Interlocked.Read(ref _sent),
        MessagesReceived = Interlocked.Read(ref _received),
        MessagesQueuedWhileDisconnected = Interlocked.Read(ref _queuedWhileDown),
        MessagesDroppedQueueFull = Interlocked.Read(ref _droppedFull),
        MessagesDroppedStale = Interlocked.Read(ref _droppedStale),
        MessagesDroppedClosed = Interlocked.Read(ref _droppedClosed),
        QueuedMessages = _queue.Count,
        QueuedBytes = _queue.Bytes,
    };

    /// <summary>Reads received messages until the client closes.</summary>
    public IAsyncEnumerable<LifelineMessage> ReadAllAsync(CancellationToken cancellationToken = default) =>
        _incoming.Reader.ReadAllAsync(cancellationToken);

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
        lock (_stateLock)
        {
            if (_state != LifelineClientState.NotStarted)
            {
                throw new InvalidOperationException($"The client was already started (state {_state}); a client runs once, create a new one to start again.");
            }

            TransitionLocked(LifelineClientState.Connecting, new LifelineStateChangedEventArgs(_state, LifelineClientState.Connecting, _time.GetUtcNow()) { Attempt = 1 });
            _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        }

        return _firstConnected.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Stops for good: sends a Close frame with <paramref name="code"/> (default 1000) and waits up to
    /// <see cref="LifelineClientOptions.CloseTimeout"/> for the server's reply, then aborts. Queued sends are dropped.
    /// </summary>
    /// <exception cref="ArgumentException">The code may not be sent (1005, 1006, 1015, reserved) or the reason is over 123 bytes of UTF-8.</exception>
    public async Task StopAsync(CloseCode? code = null, string? reason = null, CancellationToken cancellationToken = default)
    {
        var closeCode = code ?? CloseCode.NormalClosure;
        if (!closeCode.CanBeSent)
        {
            throw new ArgumentException(
                $"Close code {closeCode} ({closeCode.Info.GetName(System.Globalization.CultureInfo.InvariantCulture)}) may not be sent by an endpoint; use 1000, 1001, 1008 or a code from 3000-4999.",
                nameof(code));
        }

        CloseReason.ThrowIfInvalid(reason, nameof(reason));
        ClientWebSocket? socket;
        lock (_stateLock)
        {
            if (_state == LifelineClientState.NotStarted)
            {
                _stopRequest = (closeCode, reason);
                _stopping.Cancel();
                FinishLocked(new CloseRecord(closeCode, reason, CloseInitiator.Client, false, null, "stopped before it started"), null);
                return;
            }

            _stopRequest ??= (closeCode, reason);
            socket = _currentSocket;
        }

        if (socket is not null)
        {
            await SendCloseFrameAsync(socket, closeCode, reason, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        // The receive loop ends when the server answers the Close frame; past the timeout, abort.
        using var timeout = new CancellationTokenSource(_options.CloseTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            await _loop.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await _loop.ConfigureAwait(false);
        }
    }

    /// <summary>Stops (1000) and releases everything.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await StopAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // Already torn down.
        }

        _events.Writer.TryComplete();
        await _eventPump.ConfigureAwait(false);
        _stopping.Dispose();
        _sendLock.Dispose();
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

        _events.Writer.TryWrite(args);
        return true;
    }

    private void Transition(LifelineClientState next, CloseRecord? close = null, ConnectFailure? failure = null, TimeSpan? delay = null, int? attempt = null)
    {
        lock (_stateLock)
        {
            TransitionLocked(next, new LifelineStateChangedEventArgs(_state, next, _time.GetUtcNow())
            {
                Close = close,
                Failure = failure,
                ReconnectDelay = delay,
                Attempt = attempt,
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
        _queue.Clear();
        _incoming.Writer.TryComplete();
        _firstConnected.TrySetException(new LifelineConnectException(close, failure));
    }

    private async Task PumpEventsAsync()
    {
        await foreach (var change in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
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
                _closed.TrySetResult();
            }
        }
    }

    private void OnDropped(DropReason reason)
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
            default:
                Interlocked.Increment(ref _droppedClosed);
                tag = "closed";
                break;
        }

        LifelineMetrics.ClientMessagesDropped.Add(1, new KeyValuePair<string, object?>("reason", tag));
        Log.MessageDropped(_logger, tag);
    }
}
