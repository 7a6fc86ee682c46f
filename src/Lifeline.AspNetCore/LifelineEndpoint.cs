using System.Net.WebSockets;
using Lifeline.CloseCodes;
using Lifeline.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lifeline.AspNetCore;

/// <summary>Handles one request to a <c>MapLifeline</c> endpoint: checks, admission, accept, handler, cleanup.</summary>
internal sealed class LifelineEndpoint(
    Func<LifelineConnection, CancellationToken, Task> handler,
    LifelineServer server,
    IOptions<LifelineServerOptions> options,
    ILogger<LifelineEndpoint> logger,
    TimeProvider time)
{
    private readonly LifelineServerOptions _options = options.Value;

    /// <summary>Whether the endpoint speaks <c>lifeline.v1</c>; a plain endpoint never selects it, so a session client gets 1010 from itself, not silence.</summary>
    public bool SupportsSessions { get; set; }

    /// <summary>
    /// Synchronous up to the connection's own method when no <see cref="LifelineServerOptions.Authorize"/> is set, so a
    /// connection does not keep a suspended frame of this method alive for its whole life.
    /// </summary>
    public Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return RefuseNonWebSocketAsync(context);
        }

        return _options.Authorize is { } authorize ? AuthorizeThenAdmitAsync(context, authorize) : AdmitAsync(context);
    }

    private static Task RefuseNonWebSocketAsync(HttpContext context)
    {
        // Plain HTTP, or an upgrade missing its WebSocket headers: say so instead of a bare 400.
        context.Response.StatusCode = StatusCodes.Status400BadRequest;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(
            "This endpoint accepts WebSocket connections only. Connect with a WebSocket client (ws:// or wss://), " +
            "sending 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13' and a 'Sec-WebSocket-Key'.\n",
            context.RequestAborted);
    }

    private async Task AuthorizeThenAdmitAsync(HttpContext context, Func<HttpContext, ValueTask<bool>> authorize)
    {
        if (!await authorize(context).ConfigureAwait(false))
        {
            // A browser cannot read the status of a refused upgrade, so accept and close with a code it can see.
            await RejectAsync(context, CloseCode.PolicyViolation, "unauthorized", Admission.Unauthorized, retryAfter: null).ConfigureAwait(false);
            return;
        }

        await AdmitAsync(context).ConfigureAwait(false);
    }

    private Task AdmitAsync(HttpContext context)
    {
        switch (server.TryAdmit())
        {
            case Admission.Admitted:
                return RunConnectionAsync(context); // gives the admission back when it ends
            case Admission.Draining:
                var hint = server.LateArrivalHint();
                return RejectAsync(context, server.DrainCode, server.DrainReason(hint), Admission.Draining, hint);
            case var refused:
                return RejectAsync(context, CloseCode.TryAgainLater, RetryHint.AppendTo("Try Again Later", _options.TryAgainLaterHint), refused, _options.TryAgainLaterHint);
        }
    }

    private async Task RunConnectionAsync(HttpContext context)
    {
        // Admitted: the admission is given back however this ends, including a failed accept.
        try
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync(AcceptContext(context)).ConfigureAwait(false);
            var connection = new LifelineConnection(socket, context, _options, server.Registry, server.Metrics, logger, time);
            server.Registry.Add(connection);
            server.Metrics.Accepted.Add(1);
            server.Metrics.OpenConnections.Add(1);
            if (logger.IsEnabled(LogLevel.Debug))
            {
                ServerLog.Accepted(logger, connection.Id, connection.RemoteEndPoint?.ToString()); // reads the address only when logged
            }
            try
            {
                var receiving = connection.ReceiveLoopAsync(context.RequestAborted);
                if (server.IsDraining)
                {
                    // Admitted just before a drain began and registered after its snapshot: it gets the same close,
                    // and the handler never starts.
                    var hint = server.LateArrivalHint();
                    connection.DrainHint = hint;
                    await connection.CloseForDrainAsync(server.DrainCode, server.DrainReason(hint), CancellationToken.None).ConfigureAwait(false);
                    await WaitForTheEndAsync(receiving, socket).ConfigureAwait(false);
                    return;
                }

                try
                {
                    await handler(connection, connection.Closing).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (connection.Closing.IsCancellationRequested)
                {
                    // The handler stopped because the connection closed: that is its normal end.
                }
                catch (InvalidOperationException) when (connection.Closing.IsCancellationRequested || connection.IsCloseRequested)
                {
                    // A send after the connection closed, or after its link died, or once a close (a drain's 1012, say) was
                    // requested (SendAsync throws then): the same end, not a failure to report with 1011.
                }
#pragma warning disable CA1031 // One handler's failure must not affect other connections or the host.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    ServerLog.HandlerFailed(logger, connection.Id, e);
                    await connection.CloseAsync(CloseCode.InternalError, "internal error", CancellationToken.None).ConfigureAwait(false);
                }

                connection.HandlerReturned();
                await connection.FinishAsync().ConfigureAwait(false);
                await WaitForTheEndAsync(receiving, socket).ConfigureAwait(false);
            }
            finally
            {
                server.Registry.Remove(connection);
                await connection.StopWriterAsync().ConfigureAwait(false);
                server.Metrics.OpenConnections.Add(-1);
                ServerLog.Ended(logger, connection.Id, connection.ClosedWith?.ToString() ?? "aborted");
                connection.Release();
            }
        }
        finally
        {
            server.Release();
        }
    }

    private WebSocketAcceptContext AcceptContext(HttpContext context)
    {
        var requested = context.WebSockets.WebSocketRequestedProtocols;
        var sessions = requested.Contains(Lifeline.Session.Wire.SessionProtocol.SubProtocol);
        var others = requested.Where(p => p != Lifeline.Session.Wire.SessionProtocol.SubProtocol).ToList();
        return new WebSocketAcceptContext
        {
            KeepAliveInterval = _options.KeepAliveInterval,
            KeepAliveTimeout = _options.KeepAliveInterval > TimeSpan.Zero && _options.KeepAliveTimeout > TimeSpan.Zero
                ? _options.KeepAliveTimeout
                : Timeout.InfiniteTimeSpan,
            SubProtocol = SupportsSessions && sessions ? Lifeline.Session.Wire.SessionProtocol.SubProtocol : others.Count > 0 ? others[0] : null,
        };
    }

    /// <summary>
    /// Accepts the upgrade only to close it at once with a code and hint the client can read, waiting at most
    /// <see cref="LifelineServerOptions.RefusalCloseTimeout"/> for the answer. When
    /// <see cref="LifelineServerOptions.MaxRefusalsInFlight"/> refusals are already in that handshake, answers HTTP 503
    /// with <c>Retry-After</c> instead (HTTP 403 for an unauthorized client, which must not retry), which costs no
    /// upgraded socket.
    /// </summary>
    private async Task RejectAsync(HttpContext context, CloseCode code, string reason, Admission admission, TimeSpan? retryAfter)
    {
        server.Metrics.Rejected.Add(1, new KeyValuePair<string, object?>("reason", admission.Tag()));
        if (!server.TryEnterRefusal())
        {
            if (admission == Admission.Unauthorized)
            {
                // Not 503: clients retry a 5xx, and this refusal means "stop", as 1008 does.
                ServerLog.RejectedWithoutUpgrade(logger, admission.Tag(), StatusCodes.Status403Forbidden, _options.MaxRefusalsInFlight);
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                return;
            }

            ServerLog.RejectedWithoutUpgrade(logger, admission.Tag(), StatusCodes.Status503ServiceUnavailable, _options.MaxRefusalsInFlight);
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            var seconds = Math.Max(1, (int)Math.Ceiling((retryAfter ?? _options.TryAgainLaterHint).TotalSeconds));
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return;
        }

        try
        {
            ServerLog.Rejected(logger, code.Value, reason);
            // Select lifeline.v1 when offered: a session client must see the 1012/1013 (and retry), not a missing subprotocol (1010, fatal).
            using var socket = await context.WebSockets.AcceptWebSocketAsync(AcceptContext(context)).ConfigureAwait(false);
            using var timeout = new CancellationTokenSource(_options.RefusalCloseTimeout, time);
            try
            {
                await socket.CloseOutputAsync(code.ToWebSocketCloseStatus(), CloseReason.Truncate(reason), timeout.Token).ConfigureAwait(false);
                server.Metrics.ClosesSent.Add(1, new KeyValuePair<string, object?>("close_code", code.Value));
                await CloseHandshake.AwaitReplyAsync(socket, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
                socket.Abort();
            }
        }
        finally
        {
            server.ExitRefusal();
        }
    }

    /// <summary>
    /// Waits for the receive loop to end once the Close frame went out. The client has SendTimeout to answer (the
    /// connection aborts it then), or in a drain the drain's DrainTimeout: this bound, past both, only backs them up.
    /// A fixed 5 s here reset a client still reading the backlog that sat in the kernel's buffers ahead of the Close.
    /// </summary>
    private async Task WaitForTheEndAsync(Task receiving, WebSocket socket)
    {
        try
        {
            var backstop = _options.SendTimeout + _options.DrainTimeout;
            await receiving.WaitAsync(backstop < OptionGuard.LongestTimer ? backstop : OptionGuard.LongestTimer, time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            socket.Abort(); // the client never answered the Close frame
            await receiving.ConfigureAwait(false);
        }
    }
}
