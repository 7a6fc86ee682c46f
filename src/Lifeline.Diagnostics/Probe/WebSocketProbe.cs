using Lifeline.Diagnostics.Raw;

namespace Lifeline.Diagnostics.Probe;

/// <summary>
/// Opens one WebSocket over a raw socket and reports on it: DNS, TCP, TLS and upgrade timings, the upgrade response,
/// ping round trips, and how the connection ended (a Close frame, FIN, RST, a silent drop or still open), watched
/// without sending and then checked with one more ping.
/// </summary>
public static class WebSocketProbe
{
    /// <summary>Runs one probe. Network failures are reported in <see cref="ProbeResult.Failure"/>, never thrown.</summary>
    /// <param name="options">What to probe and how; read once, at start.</param>
    /// <param name="progress">Told of each step as it completes; may be null.</param>
    /// <param name="cancellationToken">
    /// Stops the probe. Once the connection is open, the probe closes it and returns what it measured, marked
    /// <see cref="ProbeResult.Interrupted"/>.
    /// </param>
    /// <returns>What the probe found.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the connection opened.</exception>
    public static async Task<ProbeResult> RunAsync(ProbeOptions options, IProgress<ProbeProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var uri = options.Uri;
        var time = options.TimeProvider;
        var pings = options.Pings;
        var pingTimeout = options.PingTimeout;
        var pingInterval = options.PingInterval;
        var watch = options.WatchDuration;
        var connect = new RawConnectOptions(options.ConnectTimeout, options.Origin, options.SubProtocols, options.AllowUntrustedCertificate);

        var (socket, failure, timings) = await RawWebSocket.ConnectAsync(uri, connect, time, cancellationToken).ConfigureAwait(false);
        if (socket is null)
        {
            // Stopped by the caller, not a failure of the endpoint: say so the way the watch below does.
            cancellationToken.ThrowIfCancellationRequested();
            return new ProbeResult(uri)
            {
                Failure = failure,
                Addresses = timings?.Addresses ?? [],
                RemoteEndPoint = timings?.Remote,
                DnsTime = timings?.Dns,
                TcpTime = timings is null || failure!.Stage is ProbeStage.Dns or ProbeStage.Tcp ? null : timings.Tcp,
                TlsTime = timings?.Tls,
                UpgradeTime = failure!.Response is null ? null : timings!.Upgrade,
                Response = failure.Response,
            };
        }

        progress?.Report(new ProbeProgress(ProbeStage.Dns, socket.Timings.Dns));
        progress?.Report(new ProbeProgress(ProbeStage.Tcp, socket.Timings.Tcp));
        if (socket.Timings.Tls is { } tls)
        {
            progress?.Report(new ProbeProgress(ProbeStage.Tls, tls));
        }

        progress?.Report(new ProbeProgress(ProbeStage.Upgrade, socket.Timings.Upgrade));

        await using var session = new RawSession(socket, time);
        var samples = new List<TimeSpan>();
        var lost = 0;
        ConnectionEnd? end = null;
        var interrupted = false;
        try
        {
            for (var i = 0; i < pings && !session.Ended.IsCompleted; i++)
            {
                var rtt = await session.PingAsync(pingTimeout, cancellationToken).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested(); // a ping the caller stopped is not a lost one
                if (rtt is { } value)
                {
                    samples.Add(value);
                }
                else
                {
                    lost++;
                }

                progress?.Report(new ProbeProgress(ProbeStage.Ping, rtt));
                if (pingInterval > TimeSpan.Zero)
                {
                    await Task.Delay(pingInterval, time, cancellationToken).ConfigureAwait(false);
                }
            }

            progress?.Report(new ProbeProgress(ProbeStage.Watch, null));
            end = await session.ObserveAsync(watch, cancellationToken).ConfigureAwait(false);
            if (end is null && watch > TimeSpan.Zero)
            {
                // Nothing arrived during the watch, which a link that was dropped silently (a load balancer's idle cut) looks
                // like too: only an answer to a ping tells "still open" from "silently dead".
                var answered = await session.PingAsync(pingTimeout, cancellationToken).ConfigureAwait(false) is not null;
                cancellationToken.ThrowIfCancellationRequested(); // stopped, the ping tells nothing: not a silent drop
                if (!answered)
                {
                    end = session.MarkSilent(); // or the visible end the ping provoked, if one came
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped by the caller once the connection was open: what was measured so far is still the answer, marked
            // interrupted, as how the connection would have ended is not known; unless it ended already (the server
            // closed between two pings), which is the answer then.
            end = session.Ended.IsCompletedSuccessfully ? session.Ended.Result : null;
            interrupted = end is null;
        }

        var closedByProbe = end is null;
        if (end is null)
        {
            var openFor = session.Elapsed; // before the close handshake, which is not part of what was measured
            using var closeBound = new CancellationTokenSource(pingTimeout, time); // a peer that reads nothing must not hold the probe
            await session.CloseAsync(1000, closeBound.Token).ConfigureAwait(false);
            end = interrupted ? null : new ConnectionEnd(ConnectionEndKind.StillOpen, openFor);
        }

        return new ProbeResult(uri)
        {
            Addresses = socket.Addresses,
            RemoteEndPoint = socket.RemoteEndPoint,
            DnsTime = socket.Timings.Dns,
            TcpTime = socket.Timings.Tcp,
            TlsTime = socket.Timings.Tls,
            UpgradeTime = socket.Timings.Upgrade,
            Response = socket.Response,
            PingRoundTrips = samples,
            PingsLost = lost,
            End = end,
            ClosedByProbe = closedByProbe,
            Interrupted = interrupted,
        };
    }
}
