namespace Lifeline.Redis;

/// <summary>
/// Settings of Lifeline on Redis: where Redis is, how keys are named, how long an operation may wait and the bounds
/// of what one session may keep there. Validated in every setter and again at start.
/// </summary>
public sealed class LifelineRedisOptions
{
    private string _configuration = "127.0.0.1:6379";
    private string _keyPrefix = "lifeline:";
    private string? _nodeId;
    private TimeSpan _operationTimeout = TimeSpan.FromSeconds(2);
    private TimeSpan _connectTimeout = TimeSpan.FromSeconds(5);
    private TimeSpan _leaseTtl = TimeSpan.FromMinutes(10);
    private int _maxSnapshotBytes = 16 * 1024 * 1024;
    private int _maxLogMessages = 10_000;
    private long _maxLogBytes = 16L * 1024 * 1024;
    private int _maxAppendBatch = 1_000;
    private int _fanoutQueueCapacity = 10_000;
    private int _maxFanoutPayloadBytes = 1024 * 1024;

    /// <summary>
    /// The StackExchange.Redis configuration string, for example <c>127.0.0.1:6379</c> or
    /// <c>redis1:6379,redis2:6379,password=...</c>. Default <c>127.0.0.1:6379</c>. Not empty. Lifeline always sets
    /// <c>abortConnect=false</c> (start and keep reconnecting while Redis is down) and the timeouts below on top of it.
    /// </summary>
    public string Configuration
    {
        get => _configuration;
        set => _configuration = Guard.NotBlank(value);
    }

    /// <summary>
    /// Put before every key and channel name, so several applications can share one Redis. Default <c>lifeline:</c>.
    /// At most 64 characters, without <c>{</c> or <c>}</c> (the session id is the key's hash tag); may be empty.
    /// </summary>
    public string KeyPrefix
    {
        get => _keyPrefix;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Length > 64 || value.AsSpan().IndexOfAny('{', '}') >= 0)
            {
                throw new ArgumentException("KeyPrefix must be at most 64 characters, without '{' or '}'.", nameof(value));
            }

            _keyPrefix = value;
        }
    }

    /// <summary>
    /// This process's name in ownership records and fan-out messages. Default null: the machine name, the process id
    /// and a random suffix, so two processes never share one. At most 200 characters, without <c>:</c>, when set.
    /// </summary>
    public string? NodeId
    {
        get => _nodeId;
        set
        {
            if (value is not null && (string.IsNullOrWhiteSpace(value) || value.Length > 200 || value.Contains(':', StringComparison.Ordinal)))
            {
                throw new ArgumentException("NodeId must be null, or 1 to 200 characters without ':'.", nameof(value));
            }

            _nodeId = value;
        }
    }

    /// <summary>
    /// The longest any one Redis operation may take, connecting included, before it fails with
    /// <see cref="Session.Store.SessionStoreUnavailableException"/>. Default 2 s. Between 10 ms and 1 minute.
    /// </summary>
    public TimeSpan OperationTimeout
    {
        get => _operationTimeout;
        set => _operationTimeout = Guard.Between(value, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
    }

    /// <summary>How long one connection attempt may take. Default 5 s. Between 100 ms and 1 minute.</summary>
    public TimeSpan ConnectTimeout
    {
        get => _connectTimeout;
        set => _connectTimeout = Guard.Between(value, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1));
    }

    /// <summary>
    /// How long a session's owner record, epoch and log live in Redis without a write or a renewal while its socket
    /// is attached (a saved snapshot keeps them at least until its own expiry). Default 10 minutes. Between 1 s and 1 day.
    /// </summary>
    public TimeSpan LeaseTtl
    {
        get => _leaseTtl;
        set => _leaseTtl = Guard.Between(value, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));
    }

    /// <summary>
    /// The largest serialised snapshot saved; a larger one throws <see cref="Session.Store.SessionStoreFullException"/>.
    /// Default 16 MiB. Between 1 KiB and 512 MiB (Redis's limit for one value).
    /// </summary>
    public int MaxSnapshotBytes
    {
        get => _maxSnapshotBytes;
        set => _maxSnapshotBytes = Guard.Between(value, 1024, 512 * 1024 * 1024);
    }

    /// <summary>
    /// The most unacknowledged messages one session's log holds; an append beyond it throws
    /// <see cref="Session.Store.SessionStoreFullException"/>. Default 10,000. Between 1 and 10,000,000.
    /// </summary>
    public int MaxLogMessages
    {
        get => _maxLogMessages;
        set => _maxLogMessages = Guard.Between(value, 1, 10_000_000);
    }

    /// <summary>
    /// The most bytes one session's log holds: its messages' payloads and one byte per message (its flags); an append
    /// beyond it throws <see cref="Session.Store.SessionStoreFullException"/>. Default 16 MiB. Between 1 KiB and 512 MiB.
    /// Set it above the replay buffer's byte bound by a byte per message it may hold.
    /// </summary>
    public long MaxLogBytes
    {
        get => _maxLogBytes;
        set => _maxLogBytes = Guard.Between(value, 1024L, 512L * 1024 * 1024);
    }

    /// <summary>The most messages in one append (one script call). Default 1,000. Between 1 and 5,000.</summary>
    public int MaxAppendBatch
    {
        get => _maxAppendBatch;
        set => _maxAppendBatch = Guard.Between(value, 1, 5_000);
    }

    /// <summary>
    /// The most fan-out messages received and waiting for a subscriber's callback; more are dropped, logged and
    /// counted (pub/sub is at-most-once anyway). Default 10,000. Between 1 and 1,000,000.
    /// </summary>
    public int FanoutQueueCapacity
    {
        get => _fanoutQueueCapacity;
        set => _fanoutQueueCapacity = Guard.Between(value, 1, 1_000_000);
    }

    /// <summary>
    /// The largest fan-out payload published. Default 1 MiB. Between 1 byte and 32 MiB: Redis's default output limit for
    /// pub/sub clients (<c>client-output-buffer-limit pubsub 32mb 8mb 60</c>) disconnects every subscriber as soon as one
    /// message larger than that waits for it, and what was published meanwhile is lost. (A backlog above 8 MiB for
    /// 60 s does the same: keep large payloads rare, or raise that limit.)
    /// </summary>
    public int MaxFanoutPayloadBytes
    {
        get => _maxFanoutPayloadBytes;
        set => _maxFanoutPayloadBytes = Guard.Between(value, 1, 32 * 1024 * 1024);
    }

    /// <summary>The pub/sub channel of group fan-out: <see cref="KeyPrefix"/> followed by <c>fanout</c>.</summary>
    public string FanoutChannel => _keyPrefix + "fanout";

    /// <summary>Checks what the setters cannot: that <see cref="Configuration"/> parses. Returns the problem, or null.</summary>
    public string? Validate()
    {
        try
        {
            _ = StackExchange.Redis.ConfigurationOptions.Parse(_configuration);
            return null;
        }
        catch (ArgumentException e)
        {
            return $"Configuration '{_configuration}' is not a valid StackExchange.Redis configuration: {e.Message}";
        }
    }
}
