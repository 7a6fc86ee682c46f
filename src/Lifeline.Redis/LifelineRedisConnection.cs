using System.Globalization;
using System.Net;
using Lifeline.Session.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Lifeline.Redis;

/// <summary>
/// The one Redis connection of a node, shared by <see cref="RedisSessionStore"/> and <see cref="RedisGroupFanout"/>.
/// Connects on first use and never gives up: while Redis is unreachable each operation fails within
/// <see cref="LifelineRedisOptions.OperationTimeout"/> with <see cref="SessionStoreUnavailableException"/> (logged and
/// counted as <c>lifeline.redis.errors</c>), and StackExchange.Redis reconnects in the background.
/// </summary>
/// <remarks>Thread-safe. Dispose once, when the node stops.</remarks>
public sealed partial class LifelineRedisConnection : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private Task<ConnectionMultiplexer>? _connect;
    private bool _disposed;

    /// <summary>Fan-out subscriptions on this connection, from the start of their SUBSCRIBE until they fail or are disposed (see <see cref="RedisGroupFanout"/>).</summary>
    internal int FanoutSubscriptions;

    /// <summary>Creates the connection; nothing is connected until the first operation.</summary>
    /// <param name="options">The settings, read once here.</param>
    /// <param name="logger">Where failures and reconnects are logged. Default none.</param>
    /// <param name="timeProvider">The clock for operation timeouts. Default <see cref="TimeProvider.System"/>.</param>
    public LifelineRedisConnection(LifelineRedisOptions options, ILogger<LifelineRedisConnection>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        Options = options;
        NodeId = options.NodeId ?? string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName.Replace(':', '-')}-{Environment.ProcessId}-{Random.Shared.Next():x8}");
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Creates the connection from the options registered with dependency injection.</summary>
    public LifelineRedisConnection(IOptions<LifelineRedisOptions> options, ILogger<LifelineRedisConnection>? logger = null, TimeProvider? timeProvider = null)
        : this((options ?? throw new ArgumentNullException(nameof(options))).Value, logger, timeProvider)
    {
    }

    /// <summary>The settings.</summary>
    public LifelineRedisOptions Options { get; }

    /// <summary>This node's id (<see cref="LifelineRedisOptions.NodeId"/>, or the generated one).</summary>
    public string NodeId { get; }

    /// <summary>Whether the connection to Redis is up now.</summary>
    public bool IsConnected => _connect is { IsCompletedSuccessfully: true } connect && connect.Result.IsConnected;

    internal TimeProvider TimeProvider => _timeProvider;

    internal ILogger Logger => _logger;

    /// <summary>Runs one Redis operation within the operation timeout, turning unavailability into <see cref="SessionStoreUnavailableException"/>.</summary>
    internal async Task<T> ExecuteAsync<T>(string operation, Func<ConnectionMultiplexer, Task<T>> action, CancellationToken cancellationToken)
    {
        var started = _timeProvider.GetTimestamp();
        var timeout = Options.OperationTimeout;
        try
        {
            var multiplexer = await GetMultiplexerAsync().WaitAsync(timeout, _timeProvider, cancellationToken).ConfigureAwait(false);
            var left = timeout - _timeProvider.GetElapsedTime(started);
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException("The connection took the whole operation timeout.");
            }

            return await action(multiplexer).WaitAsync(left, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && KindOf(e) is { } kind)
        {
            var elapsed = _timeProvider.GetElapsedTime(started);
            RedisMetrics.Errors.Add(1, RedisMetrics.ErrorTags(operation, kind));
            OperationFailed(_logger, operation, kind, (long)elapsed.TotalMilliseconds, e.Message);
            throw new SessionStoreUnavailableException(
                $"Redis operation {operation} failed ({kind}) after {(long)elapsed.TotalMilliseconds} ms: {e.Message} " +
                "The connection keeps retrying in the background.", e)
            {
                Operation = operation,
            };
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Task<ConnectionMultiplexer>? connect;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            connect = _connect;
        }

        if (connect is not null)
        {
            try
            {
                var multiplexer = await connect.ConfigureAwait(false);
                await multiplexer.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or ArgumentException or TimeoutException)
            {
                // It never connected: nothing to close.
            }
        }
    }

    private static string? KindOf(Exception e) => e switch
    {
        TimeoutException => "timeout", // RedisTimeoutException included.
        RedisConnectionException => "connection",
        RedisServerException server when IsTransient(server.Message) => "server",
        _ => null,
    };

    // Errors of a Redis that cannot take writes for now: loading, busy, a replica or a cluster in failover, out of memory
    // (maxmemory with noeviction, as docs/redis.md advises), a failed disk save (MISCONF), too few replicas. Inside a
    // script Redis 6.2 wraps the command's error ("ERR Error running script ...: -OOM command not allowed ...").
    private static readonly string[] TransientErrors = ["LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "OOM", "MISCONF", "NOREPLICAS"];

    private static bool IsTransient(string message) =>
        TransientErrors.Any(code => message.StartsWith(code + " ", StringComparison.Ordinal) || message.Contains("-" + code + " ", StringComparison.Ordinal));

    private Task<ConnectionMultiplexer> GetMultiplexerAsync()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_connect is null || _connect.IsFaulted || _connect.IsCanceled)
            {
                _connect = ConnectAsync();
            }

            return _connect;
        }
    }

    private async Task<ConnectionMultiplexer> ConnectAsync()
    {
        var configuration = ConfigurationOptions.Parse(Options.Configuration);
        configuration.AbortOnConnectFail = false;
        configuration.ConnectTimeout = (int)Options.ConnectTimeout.TotalMilliseconds;
        configuration.AsyncTimeout = (int)Options.OperationTimeout.TotalMilliseconds;
        configuration.SyncTimeout = (int)Options.OperationTimeout.TotalMilliseconds;
        configuration.ClientName ??= "lifeline-" + NodeId;
        var multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration).ConfigureAwait(false);
        multiplexer.ConnectionFailed += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
            {
                ConnectionLost(_logger, Format(e.EndPoint), e.FailureType, e.Exception?.Message);
            }
        };
        multiplexer.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
            {
                ConnectionRestored(_logger, Format(e.EndPoint));
            }
        };
        if (!multiplexer.IsConnected)
        {
            NotConnectedAtStart(_logger, Options.Configuration);
        }

        return multiplexer;
    }

    private static string Format(EndPoint? endPoint) => endPoint?.ToString() ?? "?";
}
