using System.Globalization;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Authentication;
using Lifeline.CloseCodes;
using Lifeline.Diagnostics;
using Lifeline.Reconnect;
using Lifeline.Session;

namespace Lifeline.Client;

public sealed partial class LifelineClient
{
    private ClientWebSocket? _currentSocket;

    /// <summary>The connection loop: connect, run, decide with the policy, wait, repeat.</summary>
    private async Task RunAsync()
    {
        // Off the caller's thread (StartAsync holds the state lock) and its synchronization context, like Task.Run.
        await Task.CompletedTask.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        var tracker = new ReconnectAttemptTracker(_time, _options.StablePeriod);
        var everConnected = false;
        TimeSpan? previousDelay = null;
        long? lostAt = null;
        CloseRecord? lastClose = null;
        ConnectFailure? lastFailure = null;
        CloseCode? outageCloseCode = null;
        try
        {
            while (!Aborting)
            {
                var (socket, failure, uri) = await ConnectOnceAsync(tracker.Attempt).ConfigureAwait(false);
                if (socket is not null && !TryAdopt(socket))
                {
                    // A stop arrived while the upgrade completed: the server saw an open connection, so close it properly.
                    lastClose = await CloseJustOpenedAsync(socket).ConfigureAwait(false);
                    StopKeepAlive();
                    break;
                }

                if (Aborting)
                {
                    break;
                }

                ReconnectContext context;
                CloseRecord? close = null;
                if (socket is null)
                {
                    Log.ConnectFailed(_logger, tracker.Attempt, failure!.Description);
                    tracker.AttemptFailed();
                    lastFailure = failure;
                    context = new ReconnectContext
                    {
                        Attempt = tracker.Attempt,
                        Elapsed = tracker.Elapsed,
                        Kind = failure.Kind,
                        ServerHint = failure.RetryAfter,
                        Exception = failure.Exception,
                        HttpStatusCode = failure.HttpStatusCode,
                        PreviousDelay = previousDelay,
                        OutageCode = outageCloseCode,
                    };
                }
                else
                {
                    var attempts = tracker.Attempt;
                    tracker.Connected();
                    var downtime = lostAt is { } at ? _time.GetElapsedTime(at) : TimeSpan.Zero;
                    if (lostAt is not null)
                    {
                        _metrics.TimeToReconnect.Record(downtime.TotalSeconds);
                    }

                    var receivedBefore = ReceivedCount;
                    var (opened, handshakeFailed) = await OpenConnectionAsync(socket, uri, everConnected, attempts, downtime).ConfigureAwait(false);
                    if (opened is { } connection)
                    {
                        CloseRecord ended;
                        try
                        {
                            // Awaited here, not in a method of its own: a client that sits connected and idle then holds
                            // one async state machine fewer (about 200 bytes).
                            ended = await connection.Receiver.ConfigureAwait(false);
                        }
                        catch
                        {
                            EndStep(connection.Step);
                            throw;
                        }

                        close = await CloseConnectionAsync(socket, connection, ended).ConfigureAwait(false);
                    }
                    else
                    {
                        close = handshakeFailed!;
                    }
                    StopKeepAlive();
                    everConnected = true;
                    lostAt = _time.GetTimestamp();
                    tracker.Disconnected(carriedMessages: ReceivedCount > receivedBefore);
                    lastClose = close;
                    lastFailure = null;
                    failure = null;
                    outageCloseCode = close.Code;
                    if (StopRequested)
                    {
                        break;
                    }

                    Log.ConnectionLost(_logger, close.Code, close.Description);
                    context = new ReconnectContext
                    {
                        Attempt = tracker.Attempt,
                        Elapsed = tracker.Elapsed,
                        Kind = DisconnectKind.ConnectionClosed,
                        Code = close.Code,
                        Reason = close.Reason,
                        ServerHint = close.ServerHint,
                        Exception = close.Exception,
                        PreviousDelay = previousDelay,
                        OutageCode = outageCloseCode,
                    };
                }

                var delay = WithinTimerRange(await DecideAsync(context, close, failure).ConfigureAwait(false));
                if (StopRequested)
                {
                    break; // stopped while the policy or its hook decided: nothing to announce, the stop ends the client
                }

                if (delay is null)
                {
                    Log.PolicyStopped(_logger, close?.ToString() ?? failure?.Description ?? "unknown");
                    break;
                }

                previousDelay = delay;
                Interlocked.Increment(ref _reconnectAttempts);
                _metrics.ReconnectAttempts.Add(1, LifelineMetrics.CloseCodeTag(close?.Code.Value));
                Log.Reconnecting(_logger, delay.Value, tracker.Attempt);
                Transition(LifelineClientState.Reconnecting, close, failure, delay, tracker.Attempt);
                var wait = BeginStep(endsOnRequest: true);
                try
                {
                    await Task.Delay(delay.Value, _time, wait.Token).ConfigureAwait(false);
                }
                finally
                {
                    EndStep(wait);
                }
            }
        }
        catch (OperationCanceledException) when (StopRequested)
        {
            // Stopped while waiting or connecting.
        }
        finally
        {
            StopKeepAlive();
            if (_inFlight is { } held)
            {
                // Taken by the queue's writer but not written when the last link died: dropped with the queue, counted so.
                held.Release();
                _inFlight = null;
                OnDropped(DropReason.Closed);
            }

            if (Volatile.Read(ref _session) is { } session)
            {
                session.Replay.Dispose(); // acknowledgement tasks complete with false
            }

            lock (_stateLock)
            {
                if (_stopRequest is { } request && lastClose?.Initiator != CloseInitiator.Client)
                {
                    lastClose = new CloseRecord { Code = request.Code, Reason = request.Reason, Initiator = CloseInitiator.Client, Cause = CloseCause.StoppedByApplication, Description = "stopped by the application" };
                }

                FinishLocked(lastClose, lastFailure);
            }

            Log.Closed(_logger, lastClose?.ToString() ?? lastFailure?.Description ?? "stopped");
        }
    }

    /// <summary>Makes a freshly opened socket the current one, unless a stop was requested first (checked under the same lock).</summary>
    private bool TryAdopt(ClientWebSocket socket)
    {
        lock (_stateLock)
        {
            if (_stopRequest is not null)
            {
                return false;
            }

            _currentSocket = socket;
            return true;
        }
    }

    /// <summary>Closes a socket that opened after the stop was requested: Close frame, reply awaited until the stop's deadline.</summary>
    private async Task<CloseRecord> CloseJustOpenedAsync(ClientWebSocket socket)
    {
        CloseCode code;
        string? reason;
        CancellationToken deadline;
        lock (_stateLock)
        {
            (code, reason) = _stopRequest!.Value;
            deadline = _stopDeadline!.Token;
        }

        var replied = false;
        try
        {
            await socket.CloseAsync(code.ToWebSocketCloseStatus(), reason, deadline).ConfigureAwait(false);
            replied = socket.State == WebSocketState.Closed;
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            socket.Abort();
        }
        finally
        {
            socket.Dispose();
        }

        return new CloseRecord { Code = code, Reason = reason, Initiator = CloseInitiator.Client, CloseFrameReceived = replied, Cause = CloseCause.StoppedByApplication, Description = "stopped by the application" };
    }

    private bool StopRequested
    {
        get
        {
            lock (_stateLock)
            {
                return _stopRequest is not null;
            }
        }
    }

    private async Task<TimeSpan?> DecideAsync(ReconnectContext context, CloseRecord? close, ConnectFailure? failure)
    {
        TimeSpan? delay;
        try
        {
            delay = _options.ReconnectPolicy.NextDelay(context);
        }
#pragma warning disable CA1031 // A faulty policy stops the client, it does not crash the process.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.CallbackFailed(_logger, nameof(IReconnectPolicy), e);
            return null;
        }

        if (delay is not { } proposed || _options.OnReconnecting is not { } hook)
        {
            return delay;
        }

        var reconnecting = new ReconnectingContext(context, proposed, close, failure);
        if (!await RunHookAsync(nameof(LifelineClientOptions.OnReconnecting), ct => hook(reconnecting, ct), CancellationToken.None).ConfigureAwait(false))
        {
            return proposed;
        }

        return reconnecting.Cancel ? null : reconnecting.Delay < TimeSpan.Zero ? TimeSpan.Zero : reconnecting.Delay;
    }

    /// <summary>
    /// A delay a timer can wait: a custom policy or hook may return a negative one (taken as zero) or one beyond what a
    /// timer takes, about 49 days (taken as that). Out of range, Task.Delay threw and ended the connection loop: the
    /// client went to Closed unlogged, right after announcing the reconnect.
    /// </summary>
    private static TimeSpan? WithinTimerRange(TimeSpan? delay) => delay switch
    {
        null => null,
        { } d when d < TimeSpan.Zero => TimeSpan.Zero,
        { } d when d > OptionGuard.LongestTimer => OptionGuard.LongestTimer,
        var d => d,
    };

    /// <summary>
    /// Runs a user hook with a token cancelled on stop, on <paramref name="cancellationToken"/> and after
    /// <see cref="LifelineClientOptions.HookTimeout"/>, and stops waiting for it then even if it ignores the token.
    /// Returns false when it threw or was cut short; its exceptions are logged, never thrown.
    /// </summary>
    private async Task<bool> RunHookAsync(string name, Func<CancellationToken, ValueTask> hook, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_options.HookTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopRequested.Token, cancellationToken);
        try
        {
            await hook(linked.Token).AsTask().WaitAsync(linked.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            if (timeout.IsCancellationRequested)
            {
                Log.HookTimedOut(_logger, name, _options.HookTimeout);
            }

            return false;
        }
#pragma warning disable CA1031 // A user's hook must not kill the client.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.CallbackFailed(_logger, name, e);
            return false;
        }
    }

    private async Task<(ClientWebSocket? Socket, ConnectFailure? Failure, Uri Uri)> ConnectOnceAsync(int attempt)
    {
        var socket = new ClientWebSocket();
        var options = socket.Options;
        var ownKeepAlive = _options.KeepAliveChecksPong; // pings and pong checks by Lifeline (see LinkStream), not the runtime
        options.KeepAliveInterval = ownKeepAlive ? TimeSpan.Zero : _options.KeepAliveInterval;
        options.KeepAliveTimeout = Timeout.InfiniteTimeSpan;
        options.CollectHttpResponseDetails = true;
        var context = new ConnectAttemptContext(attempt, _options.Uri!, options);
        var connecting = BeginStep(endsOnRequest: true, _options.ConnectTimeout); // cancelled by a stop or the connect timeout
        try
        {
            // In here: a subprotocol added to the options after the constructor checked them fails this attempt, recorded.
            if (_options.Session is not null)
            {
                options.AddSubProtocol(Lifeline.Session.Wire.SessionProtocol.SubProtocol);
            }

            foreach (var subProtocol in _options.OfferedSubProtocols)
            {
                options.AddSubProtocol(subProtocol);
            }

            _options.ConfigureWebSocket?.Invoke(options);
            if (_options.BeforeConnect is { } beforeConnect)
            {
                using var hookTimeout = new CancellationTokenSource(_options.HookTimeout, _time);
                using var hookToken = CancellationTokenSource.CreateLinkedTokenSource(connecting.Token, hookTimeout.Token);
                await beforeConnect(context, hookToken.Token).AsTask().WaitAsync(hookToken.Token).ConfigureAwait(false);
                LifelineClientOptions.CheckUri(context.Uri);
            }

            Log.Connecting(_logger, context.Uri, attempt);
            if (ownKeepAlive)
            {
                var (invoker, capture) = WebSocketInvoker.Create(options);
                using (invoker)
                {
                    await socket.ConnectAsync(context.Uri, invoker, connecting.Token).ConfigureAwait(false);
                }

                StartKeepAlive(socket, capture.Stream);
            }
            else
            {
                await socket.ConnectAsync(context.Uri, connecting.Token).ConfigureAwait(false);
            }

            socket.HttpResponseHeaders = null; // collected for a refusal's Retry-After; an open socket would keep them for its whole life
            return (socket, null, context.Uri);
        }
#pragma warning disable CA1031 // Every failure becomes a ConnectFailure the policy judges.
        catch (Exception e)
#pragma warning restore CA1031
        {
            var failure = ClassifyConnectFailure(e, socket, connecting.IsCancellationRequested && !StopRequested);
            socket.Dispose();
            return (null, failure, context.Uri);
        }
        finally
        {
            EndStep(connecting);
        }
    }

    /// <summary>Starts Lifeline's keep-alive on a connection just opened (see <see cref="KeepAliveMonitor"/>).</summary>
    private void StartKeepAlive(ClientWebSocket socket, LinkStream? link)
    {
        if (link is null)
        {
            return; // the upgrade went through without the capturing handler: no stream to watch
        }

        // The receive loop then fails, finds the monitor expired, and records the close as a keep-alive timeout.
        _keepAlive = new KeepAliveMonitor(link, _options.KeepAliveInterval, _options.KeepAliveTimeout, _time,
            static socket => ((ClientWebSocket)socket!).Abort(), socket);
    }

    private void StopKeepAlive() => Interlocked.Exchange(ref _keepAlive, null)?.Dispose();

    /// <summary>Tests: how many of Lifeline's pings on the current connection were answered.</summary>
    internal long KeepAlivePingsAnswered => Volatile.Read(ref _keepAlive)?.PingsAnswered ?? 0;

    /// <summary>How many messages the current connection's stream handed out without a pass through ClientWebSocket (tests).</summary>
    internal int MessagesTakenFromLink => Volatile.Read(ref _keepAlive)?.Stream.MessagesTaken ?? 0;

    /// <summary>
    /// Tests: the current connection's write-behind, once made, waits for <paramref name="hold"/> before each write to the
    /// connection. Set before the socket streams.
    /// </summary>
    internal void HoldLinkWritesForTest(Task hold) => Volatile.Read(ref _keepAlive)!.Stream.HoldWritesForTest = hold;

    /// <summary>How many writes the current connection's write-behind made to the connection (tests; see <see cref="WriteBehind"/>).</summary>
    internal int LinkWritesBehind => Volatile.Read(ref _keepAlive)?.Stream.WriteBehind?.LinkWrites ?? 0;

    private ConnectFailure ClassifyConnectFailure(Exception exception, ClientWebSocket socket, bool timedOut)
    {
        var status = (int)socket.HttpStatusCode;
        if (status != 0 && status != 101)
        {
            return new ConnectFailure
            {
                Kind = DisconnectKind.HandshakeRejected,
                HttpStatusCode = status,
                RetryAfter = ReadRetryAfter(socket),
                Exception = exception,
                Cause = ConnectFailureCause.UpgradeRejected,
                Description = $"the server refused the upgrade with HTTP {status}",
            };
        }

        if (timedOut)
        {
            return Failed(exception, ConnectFailureCause.Timeout, $"connect timeout after {_options.ConnectTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        }

        for (var inner = exception; inner is not null; inner = inner.InnerException)
        {
            switch (inner)
            {
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused }:
                    return Failed(exception, ConnectFailureCause.Refused, "connection refused");
                case SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData }:
                    return Failed(exception, ConnectFailureCause.HostNotFound, "DNS lookup failed: the host name did not resolve");
                case SocketException socketError:
                    return Failed(exception, ConnectFailureCause.SocketError, $"socket error {socketError.SocketErrorCode}");
                case AuthenticationException:
                    return Failed(exception, ConnectFailureCause.TlsFailed, "TLS handshake failed");
            }
        }

        return Failed(exception, ConnectFailureCause.Other, exception.Message);
    }

    private static ConnectFailure Failed(Exception exception, ConnectFailureCause cause, string description) => new()
    {
        Kind = DisconnectKind.ConnectFailed,
        Exception = exception,
        Cause = cause,
        Description = description,
    };

    private TimeSpan? ReadRetryAfter(ClientWebSocket socket)
    {
        if (socket.HttpResponseHeaders is not { } headers)
        {
            return null;
        }

        var value = headers.FirstOrDefault(h => string.Equals(h.Key, "Retry-After", StringComparison.OrdinalIgnoreCase)).Value?.FirstOrDefault();
        if (value is null)
        {
            return null;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return TimeSpan.FromSeconds(seconds);
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date)
            ? (date - _time.GetUtcNow()) is var wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero
            : null;
    }

    /// <summary>
    /// Opens a connection: the session handshake (session mode), the Connected state, the receive and ack loops, the
    /// OnReconnected hook and the send path. Returns the handshake's close record instead when it failed. What ends the
    /// connection (its receive loop) is awaited by <see cref="RunAsync"/>, which then calls <see cref="CloseConnectionAsync"/>.
    /// </summary>
    private async Task<(OpenedConnection? Opened, CloseRecord? HandshakeFailed)> OpenConnectionAsync(ClientWebSocket socket, Uri uri, bool reconnected, int attempts, TimeSpan downtime)
    {
        SessionHandshake? handshake = null;
        Volatile.Write(ref _watchdogFired, 0); // the last connection's: a failure of this one's handshake is not the watchdog's
        if (_options.Session is not null)
        {
            var handshaking = BeginStep(endsOnRequest: false); // like the connection: a stop's abort cancels it, its request does not
            (SessionHandshake? Result, CloseRecord? Close) outcome;
            try
            {
                outcome = await HandshakeAsync(socket, downtime, handshaking.Token).ConfigureAwait(false);
            }
            finally
            {
                EndStep(handshaking);
            }

            var (result, failed) = outcome;
            if (failed is not null)
            {
                lock (_stateLock)
                {
                    _currentSocket = null;
                }

                socket.Dispose();
                return (null, failed);
            }

            handshake = result;
        }

        Interlocked.Increment(ref _connects);
        _metrics.Connects.Add(1);
        Log.Connected(_logger, uri);
        Transition(LifelineClientState.Connected, attempt: attempts, session: handshake);
        var connection = BeginStep(endsOnRequest: false); // a stop closes the connection gracefully; only its abort cancels this
        try
        {
            // The ack loop's wake exists before the receive loop runs: a delivery that makes an ack due must find it.
            var session = Volatile.Read(ref _session);
            var wake = session is null ? null : new AckWake(_time, connection.Token);
            if (wake is not null)
            {
                Volatile.Write(ref _sessionMode!.AckWake, wake);
            }

            var receiver = ReceiveLoopAsync(socket, connection.Token);
            var acker = wake is null ? Task.CompletedTask : AckLoopAsync(socket, session!, wake, connection.Token);
            // A session's hook sends join the queue, behind what waited there: the queue flushes meanwhile, or a full one
            // held the hook's sends until HookTimeout cancelled them (and the flush that long). In plain mode the hook's
            // sends go out first, ahead of the queue, which opens after it.
            var openedBeforeHook = handshake is not null;
            if (openedBeforeHook)
            {
                OpenForSends(socket);
            }

            if (reconnected && _options.OnReconnected is { } onReconnected)
            {
                CompleteStart(); // a first connection after failed handshakes: StartAsync does not wait for the hook
                await RunOnReconnectedAsync(onReconnected, socket, handshake, attempts, downtime, receiver).ConfigureAwait(false);
            }

            if (!openedBeforeHook)
            {
                OpenForSends(socket); // the writer writes to the current socket, cancelled by this step
            }

            CompleteStart(); // after OpenForSends: the first sends after StartAsync write directly rather than queue
            return (new OpenedConnection(receiver, acker, connection), null);
        }
        catch
        {
            EndStep(connection);
            throw;
        }
    }

    /// <summary>The receive loop ended the connection with <paramref name="close"/>: shuts the send path, waits for the ack loop, lets the socket go.</summary>
    private async Task<CloseRecord> CloseConnectionAsync(ClientWebSocket socket, OpenedConnection connection, CloseRecord close)
    {
        try
        {
            await ShutForSendsAsync(socket, connection.Step).ConfigureAwait(false);
            await connection.Acker.ConfigureAwait(false);
            lock (_stateLock)
            {
                _currentSocket = null;
            }

            Interlocked.CompareExchange(ref _closedForNewSession, null, socket); // it ended another way (abort, stop): hold no socket
            socket.Dispose();
            return close;
        }
        finally
        {
            EndStep(connection.Step);
        }
    }

    /// <summary>An open connection: its receive loop (which ends with the connection's close record), its ack loop, and the step whose cancellation aborts them.</summary>
    private readonly record struct OpenedConnection(Task<CloseRecord> Receiver, Task Acker, CancellationTokenSource Step);

    private void CompleteStart()
    {
        TaskCompletionSource? firstConnected;
        lock (_stateLock)
        {
            firstConnected = _firstConnected;
            _firstConnected = null; // StartAsync's wait is over: a running client does not keep it
        }

        firstConnected?.TrySetResult();
    }

    /// <summary>
    /// Runs the OnReconnected hook while the receive loop already runs, so a connection lost during the hook cancels it.
    /// A method of its own so that the closures it needs exist only when there is a hook to run.
    /// </summary>
    private async Task RunOnReconnectedAsync(Func<ReconnectedContext, CancellationToken, ValueTask> onReconnected, ClientWebSocket socket, SessionHandshake? handshake, int attempts, TimeSpan downtime, Task<CloseRecord> receiver)
    {
        using var lost = new CancellationTokenSource();
        var context = new ReconnectedContext(attempts, downtime, (data, type, ct) => handshake is null
            ? SendDirectAsync(socket, data, type, ct)
            : SendAsync(data, type, ct)) // a session numbers every message: the hook's sends join the queue (see ReconnectedContext)
        {
            SessionResumed = handshake?.Resumed,
            MessagesReplayedToServer = handshake is { Resumed: true } h1 ? h1.ReplayedToServer : null,
            MessagesReplayedFromServer = handshake is { Resumed: true } h2 ? h2.ReplayedFromServer : null,
        };
        var hook = RunHookAsync(nameof(LifelineClientOptions.OnReconnected), ct => onReconnected(context, ct), lost.Token);
        if (await Task.WhenAny(hook, receiver).ConfigureAwait(false) != hook)
        {
            await lost.CancelAsync().ConfigureAwait(false);
        }

        await hook.ConfigureAwait(false);
    }
}
