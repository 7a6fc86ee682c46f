using System.Globalization;
using Lifeline.Diagnostics.Probe;
using Lifeline.Diagnostics.Raw;

namespace Lifeline.Diagnostics.IdleScan;

/// <summary>The state of one running scan (see <see cref="IdleScanner"/>).</summary>
/// <remarks>Probes finish on several tasks at once: the measured range is kept under <see cref="_lock"/>.</remarks>
internal sealed class IdleScanRun : IDisposable
{
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(10);

    /// <summary>A 1003, 1008 or 1013 this soon after the upgrade refuses the client; it does not time a silence.</summary>
    private static readonly TimeSpan RefusalWindow = TimeSpan.FromSeconds(1);

    /// <summary>After the busy connection gave way, the time the server gets to free its place before a connection tries again.</summary>
    private static readonly TimeSpan GiveWayPause = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a failed first ping waits for the connection's end to be read, to tell a reset from a missing pong.</summary>
    private static readonly TimeSpan EndSettles = TimeSpan.FromMilliseconds(500);

    private readonly IdleScanOptions _options;
    private readonly Uri _uri;
    private readonly TimeProvider _time;
    private readonly RawConnectOptions _connect;
    private readonly IProgress<IdleScanProgress>? _progress;
    private readonly Lock _lock = new();
    private readonly long _started;
    private readonly TaskCompletionSource _firstSilenceStarted = new(TaskCreationOptions.RunContinuationsAsynchronously); // the busy connection waits for it
    private readonly BusyConnectionWatch _busy;
    private int _connections;
    private int _serverPings;
    private int _serverMessages;
    private int _silentNow;
    private TimeSpan? _survived;
    private TimeSpan? _killed;
    private ConnectionEnd? _timedCut;    // the earliest cut that arrived during a silence: timed by its own arrival
    private ConnectionEnd? _provokedCut; // a reset, FIN or Close that came only in answer to the ping after a silence
    private ConnectionEnd? _silentCut;   // a ping after a silence that got nothing back
    private ConnectionFailure? _failure;

    public IdleScanRun(IdleScanOptions options, IProgress<IdleScanProgress>? progress)
    {
        _options = options;
        _uri = options.Uri;
        _time = options.TimeProvider;
        _connect = new RawConnectOptions(options.ConnectTimeout, options.Origin, options.SubProtocols, options.AllowUntrustedCertificate);
        _progress = progress;
        _started = _time.GetTimestamp();
        _busy = new BusyConnectionWatch(_uri, _connect, _time, options.MinSilence, options.PongTimeout);
    }

    private TimeSpan Elapsed => _time.GetElapsedTime(_started);

    public async Task<IdleScanResult> ScanAsync(CancellationToken cancellationToken)
    {
        using var ticker = new CancellationTokenSource();
        var ticking = TickAsync(ticker.Token);
        // The busy connection opens once the first silent one is held: not where none is held, and not before the scan's
        // own connections (it gives way if one of them finds no room).
        _busy.StartAfter(_firstSilenceStarted.Task,
            end => _progress?.Report(new IdleScanProgress(IdleScanProgressKind.BusyConnectionCut, Elapsed) { KilledAfter = end.After, End = end }));
        IdleScanResult result;
        var interrupted = false;
        try
        {
            result = await ScanRoundsAsync(cancellationToken).ConfigureAwait(false);
            if (result.Found && !result.Interrupted && result.Failure is null)
            {
                await GiveTheBusyConnectionTimeAsync(result, cancellationToken).ConfigureAwait(false);
                interrupted = cancellationToken.IsCancellationRequested;
            }
        }
        finally
        {
            await ticker.CancelAsync().ConfigureAwait(false);
            await _busy.StopAsync().ConfigureAwait(false); // never throws
            await ticking.ConfigureAwait(false);
        }

        return result.WithBusyConnection(_busy, interrupted, Elapsed);
    }

    /// <summary>
    /// A silence was cut. The busy connection opened with the first silent ones, so a path that ends every connection at
    /// that age cuts it at about the same moment: give it that long (from its own opening) and the time to notice (2 s
    /// for a cut the silent connection saw arrive; for one found by a ping, what a silent cut of the busy one takes).
    /// </summary>
    private async Task GiveTheBusyConnectionTimeAsync(IdleScanResult result, CancellationToken cancellationToken)
    {
        if (_busy.Running.IsCompleted)
        {
            return;
        }

        // Still connecting: a slow upgrade must not shorten the wait.
        await Task.WhenAny(_busy.Opened, Task.Delay(_options.ConnectTimeout, _time, cancellationToken)).ConfigureAwait(false);
        if (_busy.Age is not { } age)
        {
            return;
        }

        var killed = result.ShortestKilled!.Value;
        var left = (result.CutOnNextPacket || result.KilledBy == ConnectionEndKind.Silent
            ? killed + _busy.SilentCutNoticedWithin + TimeSpan.FromSeconds(1)
            : killed + IdleScanResult.LifetimeTolerance) - age;
        if (left > TimeSpan.Zero)
        {
            // Ends with the watch (a cut), the time, or the scan's cancellation, whichever comes first; never throws.
            await Task.WhenAny(_busy.Running, Task.Delay(left, _time, cancellationToken)).ConfigureAwait(false);
        }
    }

    private async Task<IdleScanResult> ScanRoundsAsync(CancellationToken cancellationToken)
    {
        var durations = IdleScanner.Geometric(_options.MinSilence, _options.MaxSilence, _options.Parallel);
        var round = 0;
        while (round < _options.MaxRounds)
        {
            round++;
            _progress?.Report(new IdleScanProgress(IdleScanProgressKind.RoundStarted, Elapsed) { Round = round, Silences = durations });
            await RunRoundAsync(durations, cancellationToken).ConfigureAwait(false);
            if (Volatile.Read(ref _failure) is not null)
            {
                // Not an answer, but what earlier connections measured stays in the result (longest survivor, shortest
                // victim): a refusal in round 5 must not throw away rounds 1 to 4.
                return Result(found: false, round);
            }

            if (cancellationToken.IsCancellationRequested)
            {
                return Result(found: _killed is not null, round, interrupted: true);
            }

            if (_killed is null)
            {
                return Result(found: false, round);
            }

            // A cut that arrived during a silence is timed by its own arrival. One that shows only when the scan sends
            // again (a silent drop, or a firewall that forgot the flow and resets the next packet) needs the range narrowed.
            if (_timedCut is not null)
            {
                return Result(found: true, round);
            }

            var low = _survived ?? TimeSpan.Zero;
            if (_killed.Value - low <= _options.Resolution || _killed.Value <= _options.MinSilence && _survived is null)
            {
                return Result(found: true, round);
            }

            durations = IdleScanner.Between(low, _killed.Value, _options.Parallel);
        }

        return Result(found: true, round);
    }

    /// <summary>Records one finished probe at once, so an interrupted scan still knows it.</summary>
    private void Record(SilenceProbe probe)
    {
        IdleScanProgress report;
        lock (_lock)
        {
            if (probe.Survived)
            {
                _survived = Max(_survived, probe.Silence);
                report = new IdleScanProgress(IdleScanProgressKind.SilenceSurvived, Elapsed) { Silence = probe.Silence };
            }
            else
            {
                var end = probe.End!;
                var at = probe.EndedInSilence ? end.After : probe.Silence;
                _killed = Min(_killed, at);
                if (probe.EndedInSilence)
                {
                    _timedCut = _timedCut is null || end.After < _timedCut.After ? end : _timedCut;
                }
                else if (end.Kind == ConnectionEndKind.Silent)
                {
                    _silentCut ??= end;
                }
                else
                {
                    _provokedCut ??= end;
                }

                report = new IdleScanProgress(IdleScanProgressKind.SilenceKilled, Elapsed) { Silence = probe.Silence, KilledAfter = at, End = end };
            }
        }

        _progress?.Report(report);
    }

    /// <summary>Every few seconds of a long silence, says the scan is alive and how far it got.</summary>
    private async Task TickAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(ProgressEvery, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                TimeSpan? survived;
                lock (_lock)
                {
                    survived = _survived;
                }

                _progress?.Report(new IdleScanProgress(IdleScanProgressKind.StillWaiting, Elapsed)
                {
                    SilentConnections = Volatile.Read(ref _silentNow),
                    LongestSurvived = survived,
                });
            }
        }
        catch (OperationCanceledException)
        {
            // The scan ended.
        }
    }

    private async Task RunRoundAsync(TimeSpan[] durations, CancellationToken cancellationToken)
    {
        using var round = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var shortestDead = TimeSpan.MaxValue;
        var cancels = durations.Select(_ => CancellationTokenSource.CreateLinkedTokenSource(round.Token)).ToArray();
        try
        {
            var tasks = durations.Select(async (duration, index) =>
            {
                SilenceProbe? probe;
                try
                {
                    probe = await ProbeAsync(duration, cancels[index].Token).ConfigureAwait(false);
                }
                catch (ConnectFailedException e)
                {
                    // The scan cannot run: keep the first cause and stop the other connections of the round.
                    Interlocked.CompareExchange(ref _failure, e.Failure, null);
                    await round.CancelAsync().ConfigureAwait(false);
                    return;
                }

                if (probe is null)
                {
                    return;
                }

                Record(probe);
                if (!probe.Survived)
                {
                    // Longer silences would only die too: stop them early.
                    lock (cancels)
                    {
                        shortestDead = duration < shortestDead ? duration : shortestDead;
                        for (var i = 0; i < durations.Length; i++)
                        {
                            if (durations[i] > shortestDead)
                            {
                                cancels[i].Cancel();
                            }
                        }
                    }
                }
            }).ToArray();
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        finally
        {
            foreach (var cancel in cancels)
            {
                cancel.Dispose();
            }
        }
    }

    public void Dispose() => _busy.Dispose();

    /// <summary>
    /// One silent connection; null when it was cancelled (a shorter silence already died, or the scan stopped) or, after
    /// something was measured, when it was not held (see <see cref="NotHeld"/>).
    /// </summary>
    private async Task<SilenceProbe?> ProbeAsync(TimeSpan silence, CancellationToken cancellationToken)
    {
        ConnectFailedException failed;
        try
        {
            return await ProbeOnceAsync(silence, cancellationToken).ConfigureAwait(false);
        }
        catch (ConnectFailedException e)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return null; // stopped meanwhile: as any cancelled probe
            }

            failed = e;
        }

        // A server (or a per-client limit on the path) with no room for this connection: the busy connection may have
        // taken the last place. It gives way, and this connection tries once more.
        if (LooksFull(failed.Failure) && await _busy.GiveWayAsync().ConfigureAwait(false))
        {
            try
            {
                await Task.Delay(GiveWayPause, _time, cancellationToken).ConfigureAwait(false);
                return await ProbeOnceAsync(silence, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return null;
            }
            catch (ConnectFailedException e)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    return null;
                }

                failed = e;
            }
        }

        // A connection that cannot be opened ends the scan; one opened but not held ends it only before anything was measured.
        return failed.Failure.Stage == ProbeStage.Ping ? NotHeld(failed.Failure) : throw failed;
    }

    /// <summary>
    /// A failure a full server gives: ended at once (but not with 1003 or 1008, a verdict on the client), an upgrade
    /// answered 503 or 429, a connection refused, reset or timed out. A missing pong or a bad address is no such thing.
    /// </summary>
    private static bool LooksFull(ConnectionFailure failure) => failure.Reason switch
    {
        ConnectionFailureReason.EndedAtOnce => failure.End is not { Kind: ConnectionEndKind.CloseFrame, CloseCode: 1003 or 1008 },
        ConnectionFailureReason.UpgradeRefused => failure.Response?.StatusCode is 503 or 429,
        // A timeout too: a limit that drops what it has no room for (a balancer at its maximum, a connlimit rule) says nothing.
        ConnectionFailureReason.ConnectionRefused or ConnectionFailureReason.ConnectionReset or ConnectionFailureReason.ClosedWithoutAnswer
            or ConnectionFailureReason.TimedOut => true,
        _ => false,
    };

    /// <summary>One silent connection: throws <see cref="ConnectFailedException"/> when it cannot be opened or is not held.</summary>
    private async Task<SilenceProbe?> ProbeOnceAsync(TimeSpan silence, CancellationToken cancellationToken)
    {
        var (socket, failure, _) = await RawWebSocket.ConnectAsync(_uri, _connect, _time, cancellationToken).ConfigureAwait(false);
        if (socket is null)
        {
            return cancellationToken.IsCancellationRequested ? null : throw new ConnectFailedException(failure!);
        }

        Interlocked.Increment(ref _connections);
        Interlocked.Increment(ref _silentNow);
        await using var session = new RawSession(socket, _time);
        try
        {
            // One ping before the silence. A server that ends every connection at once (a 1008 for a missing token, a
            // 1013 when full) would otherwise read as an idle timeout of about 0 s, and one that answers no ping as a
            // silent drop after every silence. Its traffic also restarts the path's idle clock, so the silence that
            // follows is measured from the last packet both ways.
            if (await session.PingAsync(_options.PongTimeout, cancellationToken).ConfigureAwait(false) is null)
            {
                cancellationToken.ThrowIfCancellationRequested();
                throw new ConnectFailedException(await WhyNotHeldAsync(session, cancellationToken).ConfigureAwait(false));
            }

            _firstSilenceStarted.TrySetResult();
            var messagesBefore = session.DataFrames;
            var end = await session.ObserveAsync(silence, cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref _serverMessages, session.DataFrames - messagesBefore);
            if (end is { Kind: ConnectionEndKind.CloseFrame, CloseCode: 1003 or 1008 or 1013 } && end.After < RefusalWindow)
            {
                // A verdict on the client, not on its silence, from a server that answered the ping first (one that
                // answers pings by itself, then checks a token).
                throw new ConnectFailedException(EndedAtOnce(end));
            }

            if (end is not null)
            {
                return new SilenceProbe(silence, false, end, EndedInSilence: true);
            }

            var rtt = await session.PingAsync(_options.PongTimeout, cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            Interlocked.Add(ref _serverPings, session.ServerPings);
            if (rtt is not null)
            {
                return new SilenceProbe(silence, true, null);
            }

            // Either the ping provoked a visible end (the path had forgotten the connection and rejects what comes next),
            // or nothing came back at all: a silent drop. Either way the cut happened at some point during the silence.
            return new SilenceProbe(silence, false, session.MarkSilent(), EndedInSilence: false);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        finally
        {
            // A connection still open at its probe's end (it survived its silence, the scan was stopped) is closed
            // cleanly, for the server's logs and metrics: 1000, not the 1006 of a dropped socket.
            await session.CloseIfOpenAsync(_options.PongTimeout).ConfigureAwait(false);
            Interlocked.Decrement(ref _silentNow);
        }
    }

    /// <summary>
    /// A connection that could not time a silence. Before anything was measured it means the server does not hold
    /// connections (or answer pings): the scan stops with <paramref name="failure"/>. After that it is one connection's
    /// mishap (a late pong, a connection cap the scan's own connections reached): this probe is left out.
    /// </summary>
    private SilenceProbe? NotHeld(ConnectionFailure failure)
    {
        lock (_lock)
        {
            if (_survived is null && _killed is null)
            {
                throw new ConnectFailedException(failure);
            }
        }

        return null;
    }

    /// <summary>Why a first ping got no pong: the connection ended (a reset may reach the reader a moment after the ping failed), or no pong came.</summary>
    private async Task<ConnectionFailure> WhyNotHeldAsync(RawSession session, CancellationToken cancellationToken)
    {
        try
        {
            await session.Ended.WaitAsync(EndSettles, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Still open: no pong.
        }

        if (session.Ended.IsCompleted)
        {
            return EndedAtOnce(session.Ended.Result);
        }

        return new ConnectionFailure(ProbeStage.Ping, ConnectionFailureReason.NoPong, string.Create(CultureInfo.InvariantCulture,
            $"the connection opened, but a first ping got no pong within {_options.PongTimeout.TotalSeconds:0.##} s: the scan tells a live link by its pong; raise the pong timeout (--pong-timeout) for a slow path, or the server, or something on the path, does not answer pings"));
    }

    private static ConnectionFailure EndedAtOnce(ConnectionEnd end) => new(ProbeStage.Ping, ConnectionFailureReason.EndedAtOnce,
        string.Create(CultureInfo.InvariantCulture,
            $"the server ended the connection at once ({end.Describe()}, {end.After.TotalSeconds:0.###} s after it opened): it does not keep this connection open at all, so there is no idle timeout to measure; see what the close says (a missing token, origin or subprotocol, a full server)"),
        end: end);

    private IdleScanResult Result(bool found, int rounds, bool interrupted = false)
    {
        TimeSpan? survived, killed;
        ConnectionEnd? cut;
        bool timed;
        lock (_lock)
        {
            (survived, killed, cut, timed) = (_survived, _killed, _timedCut ?? _provokedCut ?? _silentCut, _timedCut is not null);
        }

        return new IdleScanResult
        {
            Found = found,
            // A cut seen as it happened is timed exactly; any other lies between the longest survivor and the shortest victim.
            // An untimed cut of even the shortest silence tried says only "at most that": no estimate (see the advice).
            IdleTimeout = !found ? null
                : timed ? killed
                : survived is null ? null
                : TimeSpan.FromSeconds(Math.Round((survived.Value + killed!.Value).TotalSeconds / 2, 3)),
            LongestSurvived = survived,
            ShortestKilled = killed,
            KilledBy = cut?.Kind,
            CutOnNextPacket = !timed && cut is { Kind: not ConnectionEndKind.Silent },
            CloseCode = cut?.Kind == ConnectionEndKind.CloseFrame ? cut.CloseCode : null,
            CloseReason = cut?.CloseReason,
            MaxSilence = _options.MaxSilence,
            Rounds = rounds,
            Connections = Volatile.Read(ref _connections),
            ServerPings = Volatile.Read(ref _serverPings),
            ServerMessages = Volatile.Read(ref _serverMessages),
            Interrupted = interrupted,
            Elapsed = Elapsed,
            Failure = Volatile.Read(ref _failure),
        };
    }

    private static TimeSpan? Max(TimeSpan? a, TimeSpan b) => a is null || b > a ? b : a;

    private static TimeSpan? Min(TimeSpan? a, TimeSpan b) => a is null || b < a ? b : a;

    /// <summary>The outcome of one silent connection.</summary>
    /// <param name="Silence">How long it was held silent.</param>
    /// <param name="Survived">A ping after the silence got its pong.</param>
    /// <param name="End">How it ended, when it did not survive.</param>
    /// <param name="EndedInSilence">The end arrived during the silence (timed by its arrival), not in answer to the ping after it.</param>
    private sealed record SilenceProbe(TimeSpan Silence, bool Survived, ConnectionEnd? End, bool EndedInSilence = false);

    /// <summary>A connection of the scan could not be opened: the scan cannot run.</summary>
    private sealed class ConnectFailedException(ConnectionFailure failure) : Exception(failure.Message)
    {
        public ConnectionFailure Failure { get; } = failure;
    }
}
