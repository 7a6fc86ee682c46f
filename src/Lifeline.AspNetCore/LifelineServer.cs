using System.Diagnostics.Metrics;
using Lifeline.CloseCodes;
using Lifeline.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Lifeline.AspNetCore;

/// <summary>
/// The server's state beyond single connections: admission (capacity and rate, answered with 1013) and the
/// graceful restart (1012 with a spread of retry hints, paced, then drain).
/// </summary>
/// <remarks>Thread-safe. One instance per application, registered by <c>AddLifeline</c>.</remarks>
public sealed class LifelineServer : IDisposable
{
    private readonly LifelineServerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly AdmissionRateLimiter? _rate;
    private readonly Random _random;
    private readonly Lock _drainLock = new();
    private Task? _drain;
    private int _admitted;
    private int _refusalsInFlight;
    private int _draining;

    /// <summary>Creates the server state; normally resolved from DI.</summary>
    public LifelineServer(IOptions<LifelineServerOptions> options, LifelineConnectionRegistry registry, ILogger<LifelineServer>? logger = null, TimeProvider? timeProvider = null,
        IMeterFactory? meterFactory = null)
        : this(options, registry, logger, timeProvider, random: null, meterFactory)
    {
    }

    internal LifelineServer(IOptions<LifelineServerOptions> options, LifelineConnectionRegistry registry, ILogger<LifelineServer>? logger, TimeProvider? timeProvider, Random? random,
        IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _options.Validate();
        Registry = registry;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _random = random ?? Random.Shared;
        _rate = _options.MaxNewConnectionsPerSecond is { } perSecond
            ? new AdmissionRateLimiter(perSecond, _time)
            : null;
        Metrics = new ServerMetrics(meterFactory);
    }

    /// <summary>The retry hint of a 1013 (<see cref="LifelineServerOptions.TryAgainLaterHint"/>).</summary>
    internal TimeSpan TryAgainLaterHint => _options.TryAgainLaterHint;

    /// <summary>This server's instruments (from the host's meter factory when it has one).</summary>
    internal ServerMetrics Metrics { get; }

    /// <summary>The live connections.</summary>
    public LifelineConnectionRegistry Registry { get; }

    /// <summary>True once a drain has begun: health reports "draining" and new upgrades are turned away with 1012 (or 1013).</summary>
    public bool IsDraining => Volatile.Read(ref _draining) != 0;

    /// <summary>When the drain began and how many connections it set out to close; null until <see cref="DrainAsync"/> is called.</summary>
    internal DrainStart? DrainBegan { get; private set; }

    /// <summary>
    /// Drains: every open connection gets 1012 Service Restart (or 1013) with its own <c>retry-after-ms</c> hint, spread
    /// uniformly over the configured window and sent in paced batches; then waits for the clients to answer, up to the
    /// drain timeout, and aborts whoever is left. Calling it again returns the same drain.
    /// </summary>
    public Task DrainAsync(CancellationToken cancellationToken = default)
    {
        lock (_drainLock)
        {
            Volatile.Write(ref _draining, 1);
            return _drain ??= RunDrainAsync(cancellationToken);
        }
    }

    /// <summary>A retry hint drawn uniformly from the restart window.</summary>
    public TimeSpan NextRestartHint() => Between(_options.RestartHintMin, _options.RestartHintMax);

    /// <summary>
    /// The hint for a client that arrives while the drain is under way: a moment drawn uniformly from what is left of the
    /// drain's window (<see cref="LifelineServerOptions.RestartHintMin"/> to <see cref="LifelineServerOptions.RestartHintMax"/>
    /// after the drain began). Such a client was usually told to come back early in the window and found this host still
    /// draining; a fresh hint from the whole window would bring it back up to a whole window late. Once the window has
    /// passed (a long drain), a hint from the whole window again. Never below <see cref="LateArrivalMinHint"/> (or the
    /// window's end, when that is sooner), so a host that stays draining is not knocked on in a tight loop.
    /// </summary>
    internal TimeSpan LateArrivalHint()
    {
        var floor = _options.RestartHintMax < LateArrivalMinHint ? _options.RestartHintMax : LateArrivalMinHint;
        if (DrainBegan is not { } began)
        {
            return AtLeast(NextRestartHint(), floor); // the drain is starting
        }

        var since = _time.GetElapsedTime(began.Timestamp);
        var earliest = AtLeast(_options.RestartHintMin - since, floor);
        var latest = _options.RestartHintMax - since;
        if (latest <= earliest)
        {
            return AtLeast(NextRestartHint(), floor);
        }

        return Between(earliest, latest);
    }

    /// <summary>The shortest hint given to a late arrival (unless the window ends sooner).</summary>
    internal static TimeSpan LateArrivalMinHint { get; } = TimeSpan.FromMilliseconds(250);

    private static TimeSpan AtLeast(TimeSpan value, TimeSpan floor) => value < floor ? floor : value;

    private TimeSpan Between(TimeSpan min, TimeSpan max)
    {
#pragma warning disable CA5394 // Spread, not secrecy.
        return min + TimeSpan.FromTicks((long)(_random.NextDouble() * (max - min).Ticks));
#pragma warning restore CA5394
    }

    /// <summary>The code new upgrades and open connections get during a drain.</summary>
    internal CloseCode DrainCode => _options.DrainWithServiceRestart ? CloseCode.ServiceRestart : CloseCode.TryAgainLater;

    internal string DrainReason(TimeSpan hint) =>
        RetryHint.AppendTo(_options.DrainWithServiceRestart ? "Service Restart" : "Try Again Later", hint);

    /// <summary>Admits a new connection, or says why not.</summary>
    internal Admission TryAdmit()
    {
        if (IsDraining)
        {
            return Admission.Draining;
        }

        if (Interlocked.Increment(ref _admitted) > (_options.MaxConnections ?? int.MaxValue))
        {
            Interlocked.Decrement(ref _admitted);
            return Admission.OverCapacity;
        }

        if (_rate is not null)
        {
            if (!_rate.TryAcquire())
            {
                Interlocked.Decrement(ref _admitted);
                return Admission.OverRate;
            }
        }

        return Admission.Admitted;
    }

    internal void Release() => Interlocked.Decrement(ref _admitted);

    /// <summary>Takes a place for a refusal's close handshake; false when <see cref="LifelineServerOptions.MaxRefusalsInFlight"/> are in progress.</summary>
    internal bool TryEnterRefusal()
    {
        if (Interlocked.Increment(ref _refusalsInFlight) <= _options.MaxRefusalsInFlight)
        {
            return true;
        }

        Interlocked.Decrement(ref _refusalsInFlight);
        return false;
    }

    internal void ExitRefusal() => Interlocked.Decrement(ref _refusalsInFlight);

    /// <inheritdoc />
    public void Dispose() => Metrics.Dispose();

    private async Task RunDrainAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var connections = Registry.Connections.ToArray();
        DrainBegan = new DrainStart(_time.GetUtcNow(), started, connections.Length); // before the first await: set when DrainAsync returns
        ServerLog.DrainStarted(_logger, connections.Length, DrainCode.Value, _options.RestartHintMin, _options.RestartHintMax);

        using var timeout = new CancellationTokenSource(_options.DrainTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        var done = connections.Select(connection => connection.Completion.WaitAsync(linked.Token)).ToArray();
        try
        {
            // Batches pace the Close frames (DrainCloseBatchSize per DrainCloseBatchInterval); they do not wait for each
            // other's writes, so one client whose TCP window is shut cannot hold back everyone after it.
            var closes = new List<Task>(connections.Length);
            var due = TimeSpan.Zero; // when the next batch is due, counted from the drain's start
            foreach (var batch in connections.Chunk(_options.DrainCloseBatchSize))
            {
                due = await WaitForBatchAsync(due, started, linked.Token).ConfigureAwait(false);
                foreach (var connection in batch)
                {
                    var hint = NextRestartHint();
                    connection.DrainHint = hint;
                    closes.Add(connection.CloseForDrainAsync(DrainCode, DrainReason(hint), linked.Token));
                }
            }

            await Task.WhenAll(closes).ConfigureAwait(false);
            await Task.WhenAll(done).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Past the drain timeout (or the host's shutdown timeout): the rest are aborted below.
        }

        var aborted = 0;
        foreach (var connection in connections.Where(c => !c.Completion.IsCompleted))
        {
            connection.Abort();
            aborted++;
        }

        var duration = _time.GetElapsedTime(started);
        Metrics.DrainDuration.Record(duration.TotalSeconds);
        ServerLog.DrainFinished(_logger, duration, connections.Length - aborted, aborted);
    }

    /// <summary>
    /// Waits until a drain's next batch is <paramref name="due"/> (counted from <paramref name="started"/>); returns when
    /// the one after it is due. Each batch is due one interval after the one before was due, not after it went out: a
    /// timer wakes a little late on a busy host, and those delays added up (5,000 closes in 50 batches 10 ms apart took
    /// 0.8-1.2 s instead of 0.5 s, and the restart took that much longer). After a stall longer than an interval (a
    /// collection, say) the schedule moves on instead of catching up, so at most two batches go out together.
    /// </summary>
    private async Task<TimeSpan> WaitForBatchAsync(TimeSpan due, long started, CancellationToken cancellationToken)
    {
        var wait = due - _time.GetElapsedTime(started);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
        }

        cancellationToken.ThrowIfCancellationRequested(); // past the drain timeout: no more closes, the rest are aborted
        var interval = _options.DrainCloseBatchInterval;
        var now = _time.GetElapsedTime(started);
        return (due < now - interval ? now - interval : due) + interval;
    }
}

/// <summary>The moment a drain began (wall clock, and the time provider's timestamp to measure from) and the connections open then (the ones it closes).</summary>
internal sealed record DrainStart(DateTimeOffset At, long Timestamp, int Connections);
