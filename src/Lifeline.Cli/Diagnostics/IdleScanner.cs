using System.Globalization;

namespace Lifeline.Cli.Diagnostics;

/// <summary>Settings of an idle scan.</summary>
internal sealed record IdleScanOptions(
    TimeSpan Min,
    TimeSpan Max,
    int Parallel,
    TimeSpan Resolution,
    TimeSpan PongTimeout,
    RawConnectOptions Connect,
    int MaxRounds = 12);

/// <summary>The outcome of one silent connection.</summary>
internal sealed record SilenceProbe(TimeSpan Silence, bool Survived, ConnectionEnd? End, int ServerPings);

/// <summary>What an idle scan found.</summary>
internal sealed record IdleScanResult
{
    public required bool Found { get; init; }

    /// <summary>The best estimate of the idle timeout (the shortest silence that was killed).</summary>
    public double? IdleTimeoutSeconds { get; init; }

    public double? LongestSurvivedSeconds { get; init; }

    public double? ShortestKilledSeconds { get; init; }

    /// <summary>reset, fin, close-frame or silent.</summary>
    public string? KilledBy { get; init; }

    public int? CloseCode { get; init; }

    public string? CloseReason { get; init; }

    public double MaxSeconds { get; init; }

    public int Rounds { get; init; }

    public int Connections { get; init; }

    public int ServerPings { get; init; }

    /// <summary>The scan was stopped (Ctrl-C, SIGTERM) before it finished: the figures are what it measured so far.</summary>
    public bool Interrupted { get; init; }

    public double ElapsedSeconds { get; init; }

    public required string Advice { get; init; }
}

/// <summary>
/// Finds the idle timeout of whatever sits between client and server. Connections are held completely silent
/// (no data, no pings) for chosen periods, several at once. A cut that shows itself (RST, FIN, a Close frame) gives
/// the timeout directly: the moment it arrived. A silent drop shows only when a ping after the silence goes
/// unanswered, so the scan narrows the range between the longest silence that survived and the shortest that was
/// killed, round after round, until it is within the resolution.
/// </summary>
internal sealed class IdleScanner(Uri uri, IdleScanOptions options, TimeProvider time, Action<string> progress)
{
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(10);

    private readonly Lock _lock = new();
    private readonly long _started = time.GetTimestamp();
    private int _connections;
    private int _serverPings;
    private int _silentNow;
    private TimeSpan? _survived;
    private TimeSpan? _killed;
    private ConnectionEnd? _cut;

    /// <summary>
    /// Runs the scan. Cancelling it ends the scan at once with what was measured so far
    /// (<see cref="IdleScanResult.Interrupted"/>), never a claim that nothing was found.
    /// </summary>
    public async Task<IdleScanResult> ScanAsync(CancellationToken cancellationToken)
    {
        using var ticker = new CancellationTokenSource();
        var ticking = TickAsync(ticker.Token);
        try
        {
            return await ScanRoundsAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await ticker.CancelAsync().ConfigureAwait(false);
            await ticking.ConfigureAwait(false);
        }
    }

    private async Task<IdleScanResult> ScanRoundsAsync(CancellationToken cancellationToken)
    {
        var durations = Geometric(options.Min, options.Max, options.Parallel);
        var round = 0;
        while (round < options.MaxRounds)
        {
            round++;
            Report(string.Create(CultureInfo.InvariantCulture,
                $"round {round}: holding {durations.Length} connections silent for {string.Join(", ", durations.Select(d => $"{d.TotalSeconds:0.##} s"))}"));
            await RunRoundAsync(durations, cancellationToken).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                return Result(found: _killed is not null, round, interrupted: true);
            }

            if (_killed is null)
            {
                return Result(found: false, round);
            }

            // A visible cut is timed by its own arrival; a silent one needs the range narrowed.
            if (_cut is not null && _cut.Kind != ConnectionEndKind.Silent)
            {
                return Result(found: true, round);
            }

            var low = _survived ?? TimeSpan.Zero;
            if (_killed.Value - low <= options.Resolution || _killed.Value <= options.Min && _survived is null)
            {
                return Result(found: true, round);
            }

            durations = Between(low, _killed.Value, options.Parallel);
        }

        return Result(found: true, round);
    }

    /// <summary>Records one finished probe at once, so an interrupted scan still knows it.</summary>
    private void Record(SilenceProbe probe)
    {
        lock (_lock)
        {
            if (probe.Survived)
            {
                _survived = Max(_survived, probe.Silence);
                Report(string.Create(CultureInfo.InvariantCulture, $"  {probe.Silence.TotalSeconds:0.##} s of silence: survived"));
            }
            else if (probe.End is { } end)
            {
                var at = end.Kind == ConnectionEndKind.Silent ? probe.Silence : end.After;
                _killed = Min(_killed, at);
                if (end.Kind != ConnectionEndKind.Silent && (_cut is null || end.After < _cut.After))
                {
                    _cut = end;
                }

                _cut ??= end;
                Report(string.Create(CultureInfo.InvariantCulture, $"  {probe.Silence.TotalSeconds:0.##} s of silence: killed after {at.TotalSeconds:0.##} s ({end.Describe()})"));
            }
        }
    }

    private void Report(string line) =>
        progress(string.Create(CultureInfo.InvariantCulture, $"[{time.GetElapsedTime(_started).TotalSeconds,6:0.0} s] {line}"));

    /// <summary>Every few seconds of a long silence, says the scan is alive and how far it got.</summary>
    private async Task TickAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(ProgressEvery, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                TimeSpan? survived;
                lock (_lock)
                {
                    survived = _survived;
                }

                Report(string.Create(CultureInfo.InvariantCulture,
                    $"  ... {Volatile.Read(ref _silentNow)} connection(s) still silent; longest silence survived so far: {(survived is { } s ? $"{s.TotalSeconds:0.##} s" : "none yet")}"));
            }
        }
        catch (OperationCanceledException)
        {
            // The scan ended.
        }
    }

    internal static TimeSpan[] Geometric(TimeSpan min, TimeSpan max, int count)
    {
        if (count == 1)
        {
            return [max];
        }

        var ratio = Math.Pow(max / min, 1.0 / (count - 1));
        return [.. Enumerable.Range(0, count).Select(i => TimeSpan.FromSeconds(Math.Round(min.TotalSeconds * Math.Pow(ratio, i), 3)))];
    }

    internal static TimeSpan[] Between(TimeSpan low, TimeSpan high, int count) =>
        [.. Enumerable.Range(1, count).Select(i => low + ((high - low) * i / (count + 1)))];

    private async Task RunRoundAsync(TimeSpan[] durations, CancellationToken cancellationToken)
    {
        using var round = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var shortestDead = TimeSpan.MaxValue;
        var cancels = durations.Select(_ => CancellationTokenSource.CreateLinkedTokenSource(round.Token)).ToArray();
        try
        {
            var tasks = durations.Select(async (duration, index) =>
            {
                var probe = await ProbeAsync(duration, cancels[index].Token).ConfigureAwait(false);
                if (probe is not null)
                {
                    Record(probe);
                }

                if (probe is { Survived: false })
                {
                    // Longer silences would only die too: stop them early.
                    lock (cancels)
                    {
                        shortestDead = Min(shortestDead, duration)!.Value;
                        for (var i = 0; i < durations.Length; i++)
                        {
                            if (durations[i] > shortestDead)
                            {
                                cancels[i].Cancel();
                            }
                        }
                    }
                }

                return probe;
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

    /// <summary>One silent connection; null when it was cancelled because a shorter silence already died.</summary>
    private async Task<SilenceProbe?> ProbeAsync(TimeSpan silence, CancellationToken cancellationToken)
    {
        RawWebSocket? socket;
        ConnectFailureReport? failure;
        try
        {
            (socket, failure, _) = await RawWebSocket.ConnectAsync(uri, options.Connect, time, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }

        if (socket is null)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return null;
            }

            throw new IdleScanException($"cannot connect to {uri}: {failure!.Cause}");
        }

        Interlocked.Increment(ref _connections);
        Interlocked.Increment(ref _silentNow);
        await using var session = new RawSession(socket, time);
        try
        {
            var end = await session.ObserveAsync(silence, cancellationToken).ConfigureAwait(false);
            if (end is not null)
            {
                return new SilenceProbe(silence, false, end, session.ServerPings);
            }

            var rtt = await session.PingAsync(options.PongTimeout, cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            Interlocked.Add(ref _serverPings, session.ServerPings);
            if (rtt is not null)
            {
                return new SilenceProbe(silence, true, null, session.ServerPings);
            }

            // Either the ping revealed a visible end, or nothing came back at all: a silent drop.
            var visible = session.Ended.IsCompleted ? await session.Ended.ConfigureAwait(false) : null;
            return new SilenceProbe(silence, false, visible is { Kind: not ConnectionEndKind.StillOpen } ? visible : session.MarkSilent(), session.ServerPings);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        finally
        {
            Interlocked.Decrement(ref _silentNow);
        }
    }

    private IdleScanResult Result(bool found, int rounds, bool interrupted = false)
    {
        TimeSpan? survived, killed;
        ConnectionEnd? cut;
        lock (_lock)
        {
            (survived, killed, cut) = (_survived, _killed, _cut);
        }

        var advice = interrupted && !found
            ? string.Create(CultureInfo.InvariantCulture,
                $"scan interrupted: no cut seen yet; the longest silence survived so far was {(survived is { } s ? $"{s.TotalSeconds:0.##} s" : "none")}; run it to the end for an answer")
            : found && killed is { } timeout
            ? string.Create(CultureInfo.InvariantCulture,
                $"something on the path cuts connections idle for about {timeout.TotalSeconds:0.#} s; send keep-alive pings at most every {Math.Max(0.5, Math.Floor(timeout.TotalSeconds / 2)):0.#} s (half the timeout) so the link never looks idle")
            : string.Create(CultureInfo.InvariantCulture,
                $"none up to --max: connections survived {options.Max.TotalSeconds:0.#} s of silence; a keep-alive interval below that is safe on this path");
        if (Volatile.Read(ref _serverPings) > 0)
        {
            advice += "; note: the server sent pings during the silence, so the path was not fully idle";
        }

        return new IdleScanResult
        {
            Found = found,
            // A visible cut is timed exactly; a silent one lies between the longest survivor and the shortest victim.
            IdleTimeoutSeconds = !found ? null
                : cut is { Kind: not ConnectionEndKind.Silent } || survived is null ? killed?.TotalSeconds
                : Math.Round((survived.Value + killed!.Value).TotalSeconds / 2, 3),
            LongestSurvivedSeconds = survived?.TotalSeconds,
            ShortestKilledSeconds = killed?.TotalSeconds,
            KilledBy = cut?.Kind switch
            {
                null => null,
                ConnectionEndKind.CloseFrame => "close-frame",
                var kind => kind.ToString()!.ToLowerInvariant(),
            },
            CloseCode = cut?.Kind == ConnectionEndKind.CloseFrame ? cut.Code : null,
            CloseReason = cut?.Reason,
            MaxSeconds = options.Max.TotalSeconds,
            Rounds = rounds,
            Connections = Volatile.Read(ref _connections),
            ServerPings = Volatile.Read(ref _serverPings),
            Interrupted = interrupted,
            ElapsedSeconds = Math.Round(time.GetElapsedTime(_started).TotalSeconds, 3),
            Advice = advice,
        };
    }

    private static TimeSpan? Max(TimeSpan? a, TimeSpan b) => a is null || b > a ? b : a;

    private static TimeSpan? Min(TimeSpan? a, TimeSpan b) => a is null || b < a ? b : a;
}

/// <summary>The scan could not run (the endpoint cannot be reached).</summary>
internal sealed class IdleScanException(string message) : Exception(message);
