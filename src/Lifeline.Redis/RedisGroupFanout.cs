using System.Threading.Channels;
using Lifeline.Session.Store;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Lifeline.Redis;

/// <summary>
/// Group sends and broadcasts across nodes over Redis pub/sub, on one channel
/// (<see cref="LifelineRedisOptions.FanoutChannel"/>) with the group's name in each message. A node publishes what its
/// application sends to a group; every other node's subscription hands it to the members it holds. A node's own
/// messages are skipped (it delivers to its local members itself).
/// </summary>
/// <remarks>
/// Pub/sub is at-most-once: a node that is disconnected from Redis when a message is published never gets it, and a
/// full receive queue drops (logged, counted as <c>lifeline.redis.fanout_dropped</c>). Messages a node publishes one
/// after another (each awaited) arrive in that order; concurrent publishes and different nodes have no order. A session member that is between
/// sockets gets a group message through its session log, written by the node that holds the session, not through
/// this channel. Thread-safe.
/// </remarks>
public sealed partial class RedisGroupFanout : ISessionGroupFanout
{
    private readonly LifelineRedisConnection _connection;
    private readonly ILogger _logger;
    private readonly RedisChannel _channel;

    /// <summary>Creates the fan-out on a node's connection.</summary>
    public RedisGroupFanout(LifelineRedisConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _connection = connection;
        _logger = connection.Logger;
        _channel = RedisChannel.Literal(connection.Options.FanoutChannel);
    }

    /// <summary>This node's id, carried in every message it publishes.</summary>
    public string NodeId => _connection.NodeId;

    /// <summary>Publishes a message for the members of <paramref name="group"/> on the other nodes.</summary>
    /// <returns>How many nodes' subscriptions Redis handed it to (this node's included, when subscribed).</returns>
    /// <exception cref="ArgumentException">The group is empty or the payload larger than <see cref="LifelineRedisOptions.MaxFanoutPayloadBytes"/>.</exception>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    public Task<long> PublishAsync(string group, ReadOnlyMemory<byte> payload, bool isText, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        return PublishCoreAsync(new GroupFanoutMessage(group, payload, isText, NodeId), cancellationToken);
    }

    /// <summary>Publishes a message for every connection on the other nodes.</summary>
    /// <inheritdoc cref="PublishAsync" path="/returns"/>
    /// <exception cref="ArgumentException">The payload is larger than <see cref="LifelineRedisOptions.MaxFanoutPayloadBytes"/>.</exception>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    public Task<long> PublishBroadcastAsync(ReadOnlyMemory<byte> payload, bool isText, CancellationToken cancellationToken = default) =>
        PublishCoreAsync(new GroupFanoutMessage(null, payload, isText, NodeId), cancellationToken);

    /// <summary>
    /// Starts receiving the other nodes' messages. <paramref name="deliver"/> runs for one message at a time, in
    /// arrival order, off Redis's I/O thread; its exceptions are logged and do not stop the subscription. Received
    /// messages wait in a queue of <see cref="LifelineRedisOptions.FanoutQueueCapacity"/>; more are dropped.
    /// StackExchange.Redis subscribes again by itself after a reconnect.
    /// </summary>
    /// <returns>Dispose it to unsubscribe; that waits for the callback in progress.</returns>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time (nothing is subscribed; try again).</exception>
    public async Task<IAsyncDisposable> SubscribeAsync(Func<GroupFanoutMessage, CancellationToken, ValueTask> deliver, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(deliver);
        var subscription = new Subscription(this, deliver);
        // The queue form of a subscription hands messages over in arrival order (the handler form may run them concurrently).
        ISubscriber? subscriber = null;
        Task<ChannelMessageQueue>? subscribing = null;
        ChannelMessageQueue redisQueue;
        Interlocked.Increment(ref _connection.FanoutSubscriptions); // counted from now: see UndoUnconfirmedSubscribeAsync
        try
        {
            redisQueue = await _connection.ExecuteAsync(
                "fanout.subscribe",
                m =>
                {
                    subscriber = m.GetSubscriber();
                    return subscribing = subscriber.SubscribeAsync(_channel);
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception)
        {
            try
            {
                if (subscribing is not null)
                {
                    await UndoUnconfirmedSubscribeAsync(subscriber!, subscribing).ConfigureAwait(false);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _connection.FanoutSubscriptions);
            }

            throw;
        }

        subscription.Start(redisQueue);
        return subscription;
    }

    /// <summary>
    /// Our wait for a SUBSCRIBE ended without its answer, but StackExchange.Redis registered the queue when the call was
    /// made: it would hand that queue every message of the channel (and subscribe it again after a reconnect) although
    /// nobody reads it, so the queue would grow for good. Undone before the caller tries again.
    /// </summary>
    private async Task UndoUnconfirmedSubscribeAsync(ISubscriber subscriber, Task<ChannelMessageQueue> subscribing)
    {
        // StackExchange.Redis ends the call within its own timeout (the same OperationTimeout); this bound is a safety net.
        var bound = (2 * _connection.Options.OperationTimeout) + TimeSpan.FromSeconds(1);
        try
        {
            var late = await subscribing.WaitAsync(bound, _connection.TimeProvider).ConfigureAwait(false);
            await late.UnsubscribeAsync().WaitAsync(bound, _connection.TimeProvider).ConfigureAwait(false);
            return;
        }
#pragma warning disable CA1031 // Never confirmed, or Redis is away: the registration is removed below instead.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        // Never confirmed: that queue is out of reach, and only a wipe of the channel's registration removes it. The wipe
        // would also end another subscription on this connection (live, or still subscribing), so it is done only when
        // this one is the only one counted.
        if (Volatile.Read(ref _connection.FanoutSubscriptions) == 1)
        {
            try
            {
                // The registration goes at once. StackExchange.Redis sends no UNSUBSCRIBE for a SUBSCRIBE still unanswered,
                // so Redis may go on sending this connection the channel's messages, which it then drops, until the
                // caller's next SUBSCRIBE and UNSUBSCRIBE on the channel (or the connection's end) set that straight.
                await subscriber.UnsubscribeAsync(_channel).WaitAsync(bound, _connection.TimeProvider).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // As above.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    /// <inheritdoc />
    Task ISessionGroupFanout.PublishAsync(string? group, ReadOnlyMemory<byte> payload, bool isText, CancellationToken cancellationToken) =>
        group is null ? PublishBroadcastAsync(payload, isText, cancellationToken) : PublishAsync(group, payload, isText, cancellationToken);

    /// <inheritdoc />
    Task<IAsyncDisposable> ISessionGroupFanout.SubscribeAsync(Func<string?, ReadOnlyMemory<byte>, bool, CancellationToken, ValueTask> deliver, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deliver);
        return SubscribeAsync((message, ct) => deliver(message.Group, message.Payload, message.IsText, ct), cancellationToken);
    }

    private Task<long> PublishCoreAsync(GroupFanoutMessage message, CancellationToken cancellationToken)
    {
        if (message.Payload.Length > _connection.Options.MaxFanoutPayloadBytes)
        {
            throw new ArgumentException($"The payload is {message.Payload.Length} bytes, more than MaxFanoutPayloadBytes ({_connection.Options.MaxFanoutPayloadBytes}).", nameof(message));
        }

        var bytes = message.Encode();
        return _connection.ExecuteAsync("fanout.publish", m => m.GetSubscriber().PublishAsync(_channel, bytes), cancellationToken);
    }

    private sealed class Subscription : IAsyncDisposable
    {
        private readonly RedisGroupFanout _owner;
        private readonly Func<GroupFanoutMessage, CancellationToken, ValueTask> _deliver;
        private readonly Channel<GroupFanoutMessage> _queue;
        private readonly CancellationTokenSource _stop = new();
        private Task _loop = Task.CompletedTask;
        private ChannelMessageQueue? _redisQueue;
        private int _disposed;

        public Subscription(RedisGroupFanout owner, Func<GroupFanoutMessage, CancellationToken, ValueTask> deliver)
        {
            _owner = owner;
            _deliver = deliver;
            _queue = Channel.CreateBounded<GroupFanoutMessage>(new BoundedChannelOptions(owner._connection.Options.FanoutQueueCapacity)
            {
                FullMode = BoundedChannelFullMode.DropWrite,
                SingleReader = true,
            });
        }

        public void Start(ChannelMessageQueue redisQueue)
        {
            _redisQueue = redisQueue;
            _loop = Task.Run(RunAsync);
            redisQueue.OnMessage(OnMessage);
        }

        // Runs on StackExchange.Redis's side, one message at a time: decode and queue only, never the callback.
        private void OnMessage(ChannelMessage received)
        {
            var message = GroupFanoutMessage.TryDecode((byte[]?)received.Message);
            if (message is null)
            {
                RedisMetrics.FanoutDropped.Add(1, new KeyValuePair<string, object?>("reason", "malformed"));
                MalformedMessage(_owner._logger);
                return;
            }

            if (string.Equals(message.OriginNodeId, _owner.NodeId, StringComparison.Ordinal))
            {
                return;
            }

            if (!_queue.Writer.TryWrite(message) && Volatile.Read(ref _disposed) == 0)
            {
                RedisMetrics.FanoutDropped.Add(1, new KeyValuePair<string, object?>("reason", "queue_full"));
                QueueFull(_owner._logger, message.Group ?? "(broadcast)", _owner._connection.Options.FanoutQueueCapacity);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            Interlocked.Decrement(ref _owner._connection.FanoutSubscriptions);

            try
            {
                await _owner._connection.ExecuteAsync(
                    "fanout.unsubscribe",
                    async _ =>
                    {
                        await _redisQueue!.UnsubscribeAsync().ConfigureAwait(false);
                        return true;
                    },
                    CancellationToken.None).ConfigureAwait(false);
            }
            catch (SessionStoreUnavailableException)
            {
                // Logged by the connection; the handler is removed locally either way once Redis answers again.
            }

            _queue.Writer.TryComplete();
            await _stop.CancelAsync().ConfigureAwait(false);
            await _loop.ConfigureAwait(false);
            _stop.Dispose();
        }

        private async Task RunAsync()
        {
            try
            {
                await foreach (var message in _queue.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                {
                    try
                    {
                        await _deliver(message, _stop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (Exception e)
                    {
                        CallbackFailed(_owner._logger, message.Group ?? "(broadcast)", e);
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // Disposed.
            }
        }
    }
}
