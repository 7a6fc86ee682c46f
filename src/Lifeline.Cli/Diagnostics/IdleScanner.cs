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
    private int _connections;
    private int _serverPings;

    public async Task<IdleScanResult> ScanAsync(CancellationToken cancellationToken)
    {
        TimeSpan? survived = null;
        TimeSpan? killed = null;
        ConnectionEnd? cut = null;
        var durations = Geometric(options.Min, options.Max, options.Parallel);
        var round = 0;
        while (round < options.MaxRounds)
        {
            round++;
            progress(string.Create(CultureInfo.InvariantCulture,
                $"round {round}: holding {durations.Length} connections silent for {string.Join(", ", durations.Select(d => $"{d.TotalSeconds:0.##} s"))}"));
            var probes = await RunRoundAsync(durations, cancellationToken).ConfigureAwait(false);
            foreach (var probe in probes)
            {
                if (probe.Survived)
                {
                    survived = Max(survived, probe.Silence);
                    progress(string.Create(CultureInfo.InvariantCulture, $"  {probe.Silence.TotalSeconds:0.##} s of silence: survived"));
                }
                else if (probe.End is { } end)
                {
                    var at = end.Kind == ConnectionEndKind.Silent ? probe.Silence : end.After;
                    killed = Min(killed, at);
                    if (end.Kind != ConnectionEndKind.Silent && (cut is null || end.After < cut.After))
                    {
                        cut = end;
                    }

                    cut ??= end;
                    progress(string.Create(CultureInfo.InvariantCulture, $"  {probe.Silence.TotalSeconds:0.##} s of silence: killed after {at.TotalSeconds:0.##} s ({end.Describe()})"));
                }
            }

            if (killed is null)
            {
                return Result(found: false, survived, null, null, round);
            }

            // A visible cut is timed by its own arrival; a silent one needs the range narrowed.
            if (cut is not null && cut.Kind != ConnectionEndKind.Silent)
            {
                return Result(found: true, survived, killed, cut, round);
            }

            var low = survived ?? TimeSpan.Zero;
            if (killed.Value - low <= options.Resolution || killed.Value <= options.Min && survived is null)
            {
                return Result(found: true, survived, killed, cut, round);
            }

            durations = Between(low, killed.Value, options.Parallel);
        }

        return Result(found: true, survived, killed, cut, round);
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

    private async Task<SilenceProbe[]> RunRoundAsync(TimeSpan[] durations, CancellationToken cancellationToken)
    {
        using var round = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var shortestDead = TimeSpan.MaxValue;
        var cancels = durations.Select(_ => CancellationTokenSource.CreateLinkedTokenSource(round.Token)).ToArray();
        try
        {
            var tasks = durations.Select(async (duration, index) =>
            {
                var probe = await ProbeAsync(duration, cancels[index].Token).ConfigureAwait(false);
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
            var results = await Task.WhenAll(tasks).ConfigureAwait(false);
            return [.. results.OfType<SilenceProbe>()];
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
        var (socket, failure, _) = await RawWebSocket.ConnectAsync(uri, options.Connect, time, cancellationToken).ConfigureAwait(false);
        if (socket is null)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return null;
            }

            throw new IdleScanException($"cannot connect to {uri}: {failure!.Cause}");
        }

        Interlocked.Increment(ref _connections);
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
    }

    private IdleScanResult Result(bool found, TimeSpan? survived, TimeSpan? killed, ConnectionEnd? cut, int rounds)
    {
        var advice = found && killed is { } timeout
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
            Advice = advice,
        };
    }

    private static TimeSpan? Max(TimeSpan? a, TimeSpan b) => a is null || b > a ? b : a;

    private static TimeSpan? Min(TimeSpan? a, TimeSpan b) => a is null || b < a ? b : a;
}

/// <summary>The scan could not run (the endpoint cannot be reached).</summary>
internal sealed class IdleScanException(string message) : Exception(message);
