using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Threading.Channels;
using Lifeline.CloseCodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Lifeline.AspNetCore;

/// <summary>
/// One accepted WebSocket on the server: identity, a stream of incoming messages, sends, groups and a validated
/// close. The connection lives as long as the handler runs.
/// </summary>
/// <remarks>
/// Thread-safe. Sends go into a bounded outbound buffer (<see cref="LifelineServerOptions.SendBufferMessages"/>,
/// <see cref="LifelineServerOptions.SendBufferBytes"/>) that one writer per connection drains to the socket, so a slow
/// client costs only itself; a client that falls behind is closed with <see cref="ServerCloseCodes.SlowConsumer"/>.
/// <see cref="CloseAsync"/> refuses codes that may not be sent (1005, 1006, 1015, reserved) and shortens reasons to
/// 123 bytes on a UTF-8 boundary.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The endpoint owns the connection's life and releases its resources in Release().")]
public sealed partial class LifelineConnection
{
    private const int ReceiveChunk = 16 * 1024;

    private readonly WebSocket _socket;
    private readonly LifelineServerOptions _options;
    private readonly LifelineConnectionRegistry _registry;
    private readonly ServerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _closing = new();
    private readonly ConnectionInbox _incoming;
    private readonly SentCloseObserver? _sentClose;
    private int _ended;
    private ConcurrentDictionary<string, byte>? _groups; // created by the first JoinGroup: most connections join none
    private ConcurrentDictionary<string, object?>? _items;
    private HttpContext? _request; // the upgrade request while it lasts; RequestDetails are read from it on first use
    private RequestDetails? _details;
    private LazySignal _handlerReturned; // under _outgoingLock
    private LazySignal _released; // Completion; under _outgoingLock: its task exists only if somebody waits before the end

    internal LifelineConnection(WebSocket socket, HttpContext context, LifelineServerOptions options, LifelineConnectionRegistry registry, ServerMetrics metrics, ILogger logger, TimeProvider time)
    {
        _socket = socket;
        _metrics = metrics;
        _options = options;
        _registry = registry;
        _logger = logger;
        _time = time;
        Id = (context.Features.Get<IHttpConnectionFeature>()?.ConnectionId ?? context.Connection.Id) + ":" + context.TraceIdentifier;
        _request = context;
        SubProtocol = socket.SubProtocol;
        _sentClose = context.Features.Get<IHttpUpgradeFeature>() as SentCloseObserver;
        _incoming = new ConnectionInbox(options.ReceiveCapacity, options.ReceiveCapacityBytes, _closing.Token);
    }

    /// <summary>A unique id for this connection.</summary>
    public string Id { get; }

    /// <summary>The authenticated user of the upgrade request.</summary>
    public ClaimsPrincipal User => Details.User;

    /// <summary>The client's address.</summary>
    public IPEndPoint? RemoteEndPoint => Details.RemoteEndPoint;

    /// <summary>The query string of the upgrade request.</summary>
    public IQueryCollection Query => Details.Query;

    /// <summary>
    /// User, query and address, read from the request the first time one is asked for (an anonymous request would
    /// otherwise get an empty principal, a query feature and an address object per connection that nobody reads), and
    /// at the latest when the connection ends, while the request is still valid.
    /// </summary>
    private RequestDetails Details => Volatile.Read(ref _details) ?? CaptureDetails();

    /// <summary>The negotiated subprotocol, if any.</summary>
    public string? SubProtocol { get; }

    /// <summary>Whether this socket carries a session (<c>lifeline.v1</c>): only session frames may be written to it.</summary>
    internal bool CarriesSession => SubProtocol == Lifeline.Session.Wire.SessionProtocol.SubProtocol;

    /// <summary>Application state for this connection.</summary>
    public ConcurrentDictionary<string, object?> Items =>
        Volatile.Read(ref _items) ?? Interlocked.CompareExchange(ref _items, new(StringComparer.Ordinal), null) ?? _items;

    /// <summary>
    /// Messages from the client, whole and in order; completes when the connection ends. Read it without the
    /// <see cref="Closing"/> token (<c>Messages.ReadAllAsync()</c>): messages that arrived before the close stay
    /// readable after it, and the loop ends by itself when the connection does.
    /// <para>
    /// Holds <see cref="LifelineServerOptions.ReceiveCapacity"/> messages and <see cref="LifelineServerOptions.ReceiveCapacityBytes"/>
    /// bytes (one larger message when empty). When the handler falls behind, the server
    /// stops reading data from the client (TCP pushes back) but still answers pings, pongs and a Close frame that
    /// arrives next; once the server itself is closing, messages that do not fit are dropped (and logged) so that
    /// the client's answer can be read.
    /// </para>
    /// <para>
    /// On a session's socket (<see cref="LifelineSession.Connection"/>) the session reads this itself and owns
    /// what it reads (it turns each frame into the message it hands on): read <see cref="LifelineSession.Messages"/>
    /// there instead; reading or peeking here takes frames from the session.
    /// </para>
    /// </summary>
    public ChannelReader<LifelineMessage> Messages => _incoming;

    /// <summary>
    /// Cancelled once the connection is over for reading: the close handshake finished (the client's Close frame arrived
    /// and ours went back after what was queued, or the client answered ours), the link died, or the client was closed
    /// as a slow consumer. Use it to stop sending and waiting, not to stop
    /// reading <see cref="Messages"/>, which may still hold messages received before. When the server closes first (the
    /// handler's <see cref="CloseAsync"/>, an idle timeout, a drain's 1012), sends throw
    /// <see cref="InvalidOperationException"/> from that moment, and this token follows once the client answers, or
    /// when the link is aborted <see cref="LifelineServerOptions.SendTimeout"/> after our Close frame went out without
    /// an answer (in a drain: at its DrainTimeout).
    /// </summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>
    /// The code the connection ended with, once it has: the client's when it closed first; ours when we did (including
    /// 1002 or 1007 sent because the client broke the protocol or sent invalid UTF-8, and 4008 for a slow consumer);
    /// 1006 for a link lost without a Close frame.
    /// </summary>
    public CloseCode? ClosedWith { get; private set; }

    /// <summary>Completes when the connection is over and its handler has returned.</summary>
    public Task Completion
    {
        get
        {
            lock (_outgoingLock)
            {
                return _released.WaitLocked();
            }
        }
    }

    /// <summary>The groups this connection belongs to.</summary>
    public IReadOnlyCollection<string> Groups => Volatile.Read(ref _groups) is { } groups ? [.. groups.Keys] : [];

    /// <summary>The retry hint this connection was given when drained, if it was.</summary>
    public TimeSpan? DrainHint { get; internal set; }

    /// <summary>Adds this connection to a group (on this node).</summary>
    /// <exception cref="InvalidOperationException">The connection has ended, or it carries a session (join the session's groups instead).</exception>
    public void JoinGroup(string group)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(group);
        if (CarriesSession)
        {
            throw new InvalidOperationException(
                "This connection carries a lifeline.v1 session, whose messages must be session frames: call LifelineSession.JoinGroup and send with LifelineSessionManager.SendToGroupAsync.");
        }

        ThrowIfEnded();
        var groups = Volatile.Read(ref _groups) ?? Interlocked.CompareExchange(ref _groups, new(StringComparer.Ordinal), null) ?? _groups;

        // The record here and the table entry change together: a LeaveGroup in between would otherwise remove the record,
        // find no entry yet, and leave an entry that no end removes.
        lock (groups)
        {
            if (!groups.TryAdd(group, 0))
            {
                return;
            }

            JoinRecordedForTest?.Invoke();
            _registry.AddToGroup(group, this);
        }

        if (Volatile.Read(ref _ended) != 0)
        {
            // Ended meanwhile: Release may have missed this group, so leave it here.
            _registry.RemoveFromGroup(group, this);
            ThrowIfEnded();
        }
    }

    /// <summary>Removes this connection from a group.</summary>
    public void LeaveGroup(string group)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(group);
        if (Volatile.Read(ref _groups) is not { } groups)
        {
            return;
        }

        lock (groups)
        {
            if (groups.TryRemove(group, out _))
            {
                _registry.RemoveFromGroup(group, this);
            }
        }
    }

    /// <summary>Tests: runs in <see cref="JoinGroup"/> between its own record of the group and the table entry.</summary>
    internal Action? JoinRecordedForTest { get; set; }

    /// <summary>Drops the link at once, without a Close frame (the client sees 1006).</summary>
    public void Abort() => _socket.Abort();

    /// <summary>
    /// Reads whole messages into <see cref="Messages"/>. Between messages it waits with a zero-byte read, so an idle
    /// connection holds no buffer: one is rented from the pool when a frame arrives and kept only while the next frame
    /// is already there (a busy connection reuses it), then returned before the next wait.
    /// </summary>
    internal async Task ReceiveLoopAsync(CancellationToken requestAborted)
    {
        using var idle = _options.IdleTimeout is { } idleTimeout
            ? _time.CreateTimer(_ => _ = CloseIdleAsync(idleTimeout), null, idleTimeout, Timeout.InfiniteTimeSpan)
            : null;
        Task<ValueWebSocketReceiveResult>? peeked = null;
        byte[]? buffer = null;

        // No array holds more than Array.MaxLength bytes, and the limit plus the one byte read past it must fit an int:
        // int.MaxValue ("no limit") would otherwise overflow into a negative read size.
        var maxSize = Math.Min(_options.MaxMessageSize, Array.MaxLength - 1);
        try
        {
            while (true)
            {
                ValueWebSocketReceiveResult result;
                if (peeked is not null)
                {
                    // A receive started while the handler was behind: it already holds the next frame's header.
                    result = await peeked.ConfigureAwait(false);
                    peeked = null;
                }
                else
                {
                    var next = _socket.ReceiveAsync(Memory<byte>.Empty, requestAborted);
                    if (!next.IsCompleted)
                    {
                        ReturnBuffer(ref buffer); // idle from here on: hold nothing while waiting
                    }

                    result = await next.ConfigureAwait(false);
                }

                var written = 0;
                while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close)
                {
                    buffer ??= ArrayPool<byte>.Shared.Rent(ReceiveChunk);
                    if (written == buffer.Length)
                    {
                        Grow(ref buffer, written);
                    }

                    // Never read more than one byte past the limit: a message too big is refused, not buffered.
                    var room = Math.Min(buffer.Length - written, maxSize + 1 - written);
                    result = await _socket.ReceiveAsync(buffer.AsMemory(written, room), requestAborted).ConfigureAwait(false);
                    written += result.Count;
                    if (written > maxSize)
                    {
                        ServerLog.MessageTooBig(_logger, Id, maxSize);
                        await CloseAsync(CloseCodes.CloseCode.MessageTooBig, $"message larger than {maxSize} bytes", CancellationToken.None).ConfigureAwait(false);
                        await WaitForCloseReplyAsync(requestAborted).ConfigureAwait(false);
                        return;
                    }
                }

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ReturnBuffer(ref buffer);
                    await LetTheHandlerFinishAsync().ConfigureAwait(false);
                    await AnswerCloseAsync().ConfigureAwait(false);
                    return;
                }

                idle?.Change(_options.IdleTimeout!.Value, Timeout.InfiniteTimeSpan);
                var data = written == 0 ? [] : buffer.AsSpan(0, written).ToArray();
                peeked = await DeliverAsync(new LifelineMessage(result.MessageType, data), requestAborted).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // The runtime's WebSocket fails a connection that breaks the protocol (1002) or sends invalid UTF-8 (1007)
            // with a Close frame of its own and only then throws: record the code that went out, not 1006, and count
            // it as sent (a Close frame the writer sent was asked for, and the writer counts it).
            var runtimeClosed = ClosedWith is null && !CloseRequested().IsCompleted && _sentClose?.SentCode is > 0;
            ClosedWith ??= _sentClose?.SentCode is > 0 and var sent ? new CloseCodes.CloseCode(sent) : CloseCodes.CloseCode.AbnormalClosure;
            if (runtimeClosed)
            {
                _metrics.ClosesSent.Add(1, new KeyValuePair<string, object?>("close_code", ClosedWith.Value.Value));
            }

            // Nothing more can reach the client: later sends throw (as after a close) instead of being dropped unseen,
            // so a handler that pushes ends, and broadcasts no longer count this connection.
            _ = RequestClose(CloseCodes.CloseCode.AbnormalClosure, string.Empty, discardQueued: true);
        }
        finally
        {
            ReturnBuffer(ref buffer);
            _incoming.Complete();
            await CancelClosingAsync().ConfigureAwait(false);
        }

        void Grow(ref byte[] array, int used)
        {
            var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(array.Length * 2L, maxSize + 1L));
            array.AsSpan(0, used).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(array);
            array = bigger;
        }

        static void ReturnBuffer(ref byte[]? array)
        {
            if (array is not null)
            {
                ArrayPool<byte>.Shared.Return(array);
                array = null;
            }
        }
    }

    /// <summary>Tests: the receive loop waits for room with the next frame already peeked (nothing else is read meanwhile).</summary>
    internal bool WaitsBehindPeekedData { get; private set; }

    /// <summary>
    /// Hands a message to <see cref="Messages"/>. When the handler is behind and the buffer is full it waits for room,
    /// but keeps one empty receive pending meanwhile, so that pings, pongs and the client's Close frame are still handled:
    /// a client's Close is answered at once, and the message before it is added beyond the bound (the handler still
    /// reads it); once we are closing, messages that do not fit are dropped so that the client's answer can be read.
    /// Returns that pending receive, if one was started, for the loop to continue from.
    /// </summary>
    private async Task<Task<ValueWebSocketReceiveResult>?> DeliverAsync(LifelineMessage message, CancellationToken cancellationToken)
    {
        if (_incoming.TryWrite(message))
        {
            return null;
        }

        Task<ValueWebSocketReceiveResult>? peek = null;
        while (true)
        {
            // The request was aborted (the link died): the wait for room then ends at once, cancelled, every time, and
            // with the next frame already peeked nothing else here waits either. Leave, as the receive loop does.
            cancellationToken.ThrowIfCancellationRequested();
            var closeRequested = CloseRequested();
            if (closeRequested.IsCompleted)
            {
                ServerLog.MessageDropped(_logger, Id, _options.ReceiveCapacity, _options.ReceiveCapacityBytes);
                return peek;
            }

            var room = _incoming.WaitForRoomAsync(message.Data.Length, cancellationToken);
            peek ??= _socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken).AsTask();
            if (!peek.IsCompleted)
            {
                await Task.WhenAny(room, peek, closeRequested).ConfigureAwait(false);
            }

            if (peek.IsCompleted && (!peek.IsCompletedSuccessfully || peek.Result.MessageType == WebSocketMessageType.Close))
            {
                // The client is closing (or the link failed): answer now, whatever the handler does. The message came
                // before the Close, and the handler reads on until the inbox is empty: one beyond the bound loses nothing
                // (dropped, the client got a clean close and no answer to it, or a session its SessionLost).
                if (!_incoming.WriteBeyondTheBound(message))
                {
                    ServerLog.MessageDropped(_logger, Id, _options.ReceiveCapacity, _options.ReceiveCapacityBytes);
                }

                return peek;
            }

            if (peek.IsCompleted && !room.IsCompleted)
            {
                // Data comes next: nothing more can be read until the handler makes room (or we close).
                WaitsBehindPeekedData = true;
                await Task.WhenAny(room, closeRequested).ConfigureAwait(false);
                WaitsBehindPeekedData = false;
            }

            if (_incoming.TryWrite(message))
            {
                return peek;
            }
        }
    }

    internal async Task FinishAsync()
    {
        // The handler returned: close normally if nobody has yet, then give the client a moment to answer.
        if (_socket.State == WebSocketState.Open)
        {
            await CloseAsync(CloseCodes.CloseCode.NormalClosure, null, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private RequestDetails CaptureDetails()
    {
        if (Volatile.Read(ref _request) is not { } context)
        {
            return _details!; // Release captured them before it let go of the request
        }

        var connection = context.Features.Get<IHttpConnectionFeature>();
        var details = new RequestDetails(
            context.User,
            context.Request.Query,
            connection?.RemoteIpAddress is { } address ? new IPEndPoint(address, connection.RemotePort) : null);
        return Interlocked.CompareExchange(ref _details, details, null) ?? details;
    }

    internal void Release()
    {
        _ = Details; // the request is recycled once the handler's pipeline returns: keep what can still be asked for
        Volatile.Write(ref _request, null);
        Interlocked.Exchange(ref _ended, 1); // a full fence: a JoinGroup that creates _groups after this read sees the end
        foreach (var group in Volatile.Read(ref _groups)?.Keys ?? [])
        {
            _registry.RemoveFromGroup(group, this);
        }

        lock (_outgoingLock)
        {
            _released.SetLocked();
        }

        // _closing is not disposed: Closing stays readable after the end, and the source owns no timer.
    }

    /// <summary>Cancels <see cref="Closing"/>, and tells <see cref="Messages"/>, whose waits on it do not register with it.</summary>
    private Task CancelClosingAsync()
    {
        var cancelled = _closing.CancelAsync(); // the token is cancelled at once, its callbacks run on the thread pool
        _incoming.ClosingCancelled();
        return cancelled;
    }

    private void ThrowIfEnded()
    {
        if (Volatile.Read(ref _ended) != 0)
        {
            throw new InvalidOperationException($"Connection {Id} has ended ({ClosedWith?.ToString() ?? "aborted"}); it can no longer be used.");
        }
    }

    private sealed record RequestDetails(ClaimsPrincipal User, IQueryCollection Query, IPEndPoint? RemoteEndPoint);

    private async Task CloseIdleAsync(TimeSpan idleTimeout)
    {
        ServerLog.IdleTimeout(_logger, Id, idleTimeout);
        await CloseAsync(CloseCodes.CloseCode.Timeout, "idle timeout", CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The endpoint calls this when the handler has returned.</summary>
    internal void HandlerReturned()
    {
        lock (_outgoingLock)
        {
            _handlerReturned.SetLocked();
        }
    }

    /// <summary>
    /// The client closed first: the messages it sent before are the handler's to finish (RFC 6455 lets us send before
    /// our own Close), so end <see cref="Messages"/> and wait, up to <see cref="LifelineServerOptions.CloseReplyGrace"/>,
    /// for the handler to return before answering.
    /// </summary>
    private async Task LetTheHandlerFinishAsync()
    {
        if (_socket.State != WebSocketState.CloseReceived || _options.CloseReplyGrace <= TimeSpan.Zero)
        {
            return;
        }

        _incoming.Complete();
        try
        {
            Task returned;
            lock (_outgoingLock)
            {
                returned = _handlerReturned.WaitLocked();
            }

            await returned.WaitAsync(_options.CloseReplyGrace, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A handler that runs until Closing (a stream) does not end on its own: answer now.
        }
    }

    private async Task AnswerCloseAsync()
    {
        var received = _socket.CloseStatus is { } status ? CloseCodes.CloseCode.FromWebSocketCloseStatus(status) : CloseCodes.CloseCode.NoStatusReceived;
        ClosedWith ??= received;
        if (_socket.State == WebSocketState.CloseReceived)
        {
            await CloseAsync(received.CanBeSent ? received : CloseCodes.CloseCode.NormalClosure, null, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task WaitForCloseReplyAsync(CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5), _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        await CloseHandshake.AwaitReplyAsync(_socket, linked.Token).ConfigureAwait(false);
    }
}
