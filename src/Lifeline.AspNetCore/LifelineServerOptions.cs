namespace Lifeline.AspNetCore;

/// <summary>Settings of the Lifeline server side. Setters reject values out of range; <see cref="Validate"/> runs at start.</summary>
public sealed class LifelineServerOptions
{
    private int? _maxConnections;
    private int? _maxNewConnectionsPerSecond;
    private int _maxMessageSize = 1024 * 1024;
    private TimeSpan _keepAliveInterval = TimeSpan.FromSeconds(15);
    private TimeSpan _keepAliveTimeout = TimeSpan.FromSeconds(15);
    private TimeSpan? _idleTimeout;
    private TimeSpan _restartHintMin = TimeSpan.FromSeconds(1);
    private TimeSpan _restartHintMax = TimeSpan.FromSeconds(5);
    private TimeSpan _tryAgainLaterHint = TimeSpan.FromSeconds(5);
    private TimeSpan _drainTimeout = TimeSpan.FromSeconds(20);
    private int _drainCloseBatchSize = 100;
    private TimeSpan _drainCloseBatchInterval = TimeSpan.FromMilliseconds(10);
    private int _receiveCapacity = 1_000;
    private long _receiveCapacityBytes = 4 * 1024 * 1024;
    private int _sendBufferMessages = 1_000;
    private long _sendBufferBytes = 1024 * 1024;
    private TimeSpan _sendTimeout = TimeSpan.FromSeconds(10);
    private TimeSpan _refusalCloseTimeout = TimeSpan.FromSeconds(1);
    private TimeSpan _closeReplyGrace = TimeSpan.FromSeconds(1);
    private int _maxRefusalsInFlight = 100;

    /// <summary>The most connections open at once; more are accepted and closed with 1013. Default null: no limit. At least 1 when set.</summary>
    public int? MaxConnections
    {
        get => _maxConnections;
        set => _maxConnections = OptionGuard.AtLeastOrNull(value, 1);
    }

    /// <summary>The most new connections accepted per second; more are closed with 1013. Default null: no limit. At least 1 when set.</summary>
    public int? MaxNewConnectionsPerSecond
    {
        get => _maxNewConnectionsPerSecond;
        set => _maxNewConnectionsPerSecond = OptionGuard.AtLeastOrNull(value, 1);
    }

    /// <summary>The largest message accepted from a client; a bigger one closes the connection with 1009. Default 1 MiB.</summary>
    public int MaxMessageSize
    {
        get => _maxMessageSize;
        set => _maxMessageSize = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>How often the server pings each client. Default 15 s. Zero turns server pings off.</summary>
    public TimeSpan KeepAliveInterval
    {
        get => _keepAliveInterval;
        set => _keepAliveInterval = OptionGuard.NotNegative(value);
    }

    /// <summary>How long a client may leave a ping unanswered before it is released as dead. Default 15 s. Zero or infinite: no check.</summary>
    public TimeSpan KeepAliveTimeout
    {
        get => _keepAliveTimeout;
        set => _keepAliveTimeout = OptionGuard.NotNegativeOrInfinite(value);
    }

    /// <summary>A client that sends no message for this long is closed with 3008 Timeout. Default null: off.</summary>
    public TimeSpan? IdleTimeout
    {
        get => _idleTimeout;
        set => _idleTimeout = OptionGuard.PositiveOrNull(value, "off");
    }

    /// <summary>The lower end of the window over which restart hints are spread. Default 1 s.</summary>
    public TimeSpan RestartHintMin
    {
        get => _restartHintMin;
        set => _restartHintMin = OptionGuard.NotNegative(value);
    }

    /// <summary>The upper end of the window over which restart hints are spread. Default 5 s.</summary>
    public TimeSpan RestartHintMax
    {
        get => _restartHintMax;
        set => _restartHintMax = OptionGuard.Positive(value);
    }

    /// <summary>The hint sent with 1013 when the server is over capacity. Default 5 s.</summary>
    public TimeSpan TryAgainLaterHint
    {
        get => _tryAgainLaterHint;
        set => _tryAgainLaterHint = OptionGuard.NotNegative(value);
    }

    /// <summary>
    /// How long a drain waits for clients to answer the Close frames before aborting the rest. Default 20 s, which
    /// fits inside the default 30 s HostOptions.ShutdownTimeout and Kubernetes grace period.
    /// </summary>
    public TimeSpan DrainTimeout
    {
        get => _drainTimeout;
        set => _drainTimeout = OptionGuard.Positive(value);
    }

    /// <summary>Close frames are sent in batches of this many during a drain, so thousands of closes do not land at once. Default 100.</summary>
    public int DrainCloseBatchSize
    {
        get => _drainCloseBatchSize;
        set => _drainCloseBatchSize = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>
    /// How far apart drain batches are due. Default 10 ms (so up to 10,000 closes per second). A batch is due one interval
    /// after the one before was due, so a timer that wakes late does not slow the drain; after a longer stall at most two
    /// batches go out together.
    /// </summary>
    public TimeSpan DrainCloseBatchInterval
    {
        get => _drainCloseBatchInterval;
        set => _drainCloseBatchInterval = OptionGuard.NotNegative(value);
    }

    /// <summary>Whether a drain sends 1012 Service Restart (true, the default) or 1013 Try Again Later to new upgrades and open connections.</summary>
    public bool DrainWithServiceRestart { get; set; } = true;

    /// <summary>
    /// Received messages held per connection until the handler reads them. Default 1,000. When this or
    /// <see cref="ReceiveCapacityBytes"/> is reached the connection stops reading its socket until the handler reads
    /// (TCP then slows the client down).
    /// </summary>
    public int ReceiveCapacity
    {
        get => _receiveCapacity;
        set => _receiveCapacity = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>
    /// Payload bytes of received messages held per connection until the handler reads them. Default 4 MiB. At least 1.
    /// One message larger than this (up to <see cref="MaxMessageSize"/>) is still taken when nothing else is held.
    /// Without it a client sending large messages to a handler that reads slowly held <see cref="ReceiveCapacity"/>
    /// times <see cref="MaxMessageSize"/> (1 GiB by default) of the server's memory.
    /// </summary>
    public long ReceiveCapacityBytes
    {
        get => _receiveCapacityBytes;
        set => _receiveCapacityBytes = OptionGuard.AtLeast(value, 1L);
    }

    /// <summary>
    /// Messages each connection's outbound buffer holds while its writer sends them to the socket. Default 1,000.
    /// When a broadcast finds the buffer full the connection is closed as a slow consumer
    /// (<see cref="ServerCloseCodes.SlowConsumer"/>); a direct <see cref="LifelineConnection.SendAsync"/> waits up to
    /// <see cref="SendTimeout"/> for room first. At least 1.
    /// </summary>
    public int SendBufferMessages
    {
        get => _sendBufferMessages;
        set => _sendBufferMessages = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>
    /// Bytes each connection's outbound buffer holds, counting the message being written. Default 1 MiB. Full has the
    /// same effect as <see cref="SendBufferMessages"/> full. A single message larger than this is still accepted when the
    /// buffer is empty, so the bound never forbids a message outright. At least 1.
    /// </summary>
    public long SendBufferBytes
    {
        get => _sendBufferBytes;
        set => _sendBufferBytes = OptionGuard.AtLeast(value, 1L);
    }

    /// <summary>
    /// The longest one message may take to be written to a connection's socket, and the longest a direct send waits
    /// for room in a full outbound buffer. Past it the client is a slow consumer: it is closed with
    /// <see cref="ServerCloseCodes.SlowConsumer"/> (or aborted when even the Close frame cannot be written). Sessions: the
    /// longest a group send or broadcast waits for room in one member's replay buffer before that session is lost
    /// (SessionLost, buffer full). Also how long a client may take to answer the server's Close frame once it went out
    /// (outside a drain, which waits up to <see cref="DrainTimeout"/>); then the link is aborted. Default 10 s.
    /// </summary>
    public TimeSpan SendTimeout
    {
        get => _sendTimeout;
        set => _sendTimeout = OptionGuard.Positive(value);
    }

    /// <summary>
    /// When a client closes first, how long its Close frame waits for the handler to finish the messages that arrived
    /// before it: <see cref="LifelineConnection.Messages"/> completes at once, and the answering Close goes out when the
    /// handler returns or this much time has passed, so replies to those messages (an echo, an acknowledgement) are not
    /// cut off. <see cref="LifelineConnection.Closing"/> is cancelled when the answer goes out. Default 1 s. Zero answers at once.
    /// </summary>
    public TimeSpan CloseReplyGrace
    {
        get => _closeReplyGrace;
        set => _closeReplyGrace = OptionGuard.NotNegative(value);
    }

    /// <summary>
    /// How long a refused upgrade (capacity, rate, draining, unauthorized) waits for the client to answer its Close frame
    /// before the socket is dropped. Default 1 s: refusals must stay cheap under a flood of upgrades.
    /// </summary>
    public TimeSpan RefusalCloseTimeout
    {
        get => _refusalCloseTimeout;
        set => _refusalCloseTimeout = OptionGuard.Positive(value);
    }

    /// <summary>
    /// The most refused upgrades that may be in their close handshake at once. Beyond it a refusal is answered with
    /// HTTP 503 and a <c>Retry-After</c> header (HTTP 403 when <see cref="Authorize"/> refused) instead of an upgrade and
    /// a Close frame, so a flood of upgrades cannot hold thousands of accepted sockets. Default 100. At least 1.
    /// </summary>
    public int MaxRefusalsInFlight
    {
        get => _maxRefusalsInFlight;
        set => _maxRefusalsInFlight = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>Decides whether a request may connect; false closes it with 1008 Policy Violation. Default: everyone may.</summary>
    public Func<Microsoft.AspNetCore.Http.HttpContext, ValueTask<bool>>? Authorize { get; set; }

    /// <summary>Checks relations between settings.</summary>
    public void Validate()
    {
        if (RestartHintMin > RestartHintMax)
        {
            throw new ArgumentException($"RestartHintMin ({RestartHintMin}) must not exceed RestartHintMax ({RestartHintMax}).");
        }
    }
}
