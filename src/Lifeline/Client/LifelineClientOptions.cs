using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using Lifeline.Reconnect;

namespace Lifeline.Client;

/// <summary>Settings of a <see cref="LifelineClient"/>. Setters reject values out of range; <see cref="Validate"/> checks the rest at start.</summary>
public sealed class LifelineClientOptions
{
    private Uri? _uri;
    private TimeSpan _keepAliveInterval = TimeSpan.FromSeconds(15);
    private TimeSpan _keepAliveTimeout = TimeSpan.FromSeconds(15);
    private TimeSpan? _receiveWatchdog;
    private int _maxMessageSize = 1024 * 1024;
    private TimeSpan _connectTimeout = TimeSpan.FromSeconds(15);
    private TimeSpan _closeTimeout = TimeSpan.FromSeconds(5);
    private TimeSpan _stablePeriod = TimeSpan.FromSeconds(10);
    private int _receiveCapacity = 10_000;
    private long _receiveCapacityBytes = 16 * 1024 * 1024;
    private TimeSpan _hookTimeout = TimeSpan.FromSeconds(10);
    private List<string>? _subProtocols;

    /// <summary>The server address: an absolute ws:// or wss:// URI. Required.</summary>
    public Uri? Uri
    {
        get => _uri;
        set => _uri = value is null ? null : CheckUri(value);
    }

    /// <summary>The reconnect policy. Default: <see cref="DefaultReconnectPolicy"/> with default options.</summary>
    public IReconnectPolicy ReconnectPolicy { get; set; } = DefaultReconnectPolicy.WithDefaults; // one for all: it holds no state

    /// <summary>
    /// How long the link may be silent (nothing received) before a protocol Ping is sent. Default 15 s.
    /// <see cref="TimeSpan.Zero"/> turns keep-alive off. With <see cref="KeepAliveTimeout"/> off, the runtime's
    /// unsolicited Pong is sent every interval instead (it keeps idle intermediaries open but detects nothing).
    /// </summary>
    public TimeSpan KeepAliveInterval
    {
        get => _keepAliveInterval;
        set => _keepAliveInterval = OptionGuard.NotNegative(value);
    }

    /// <summary>
    /// How long to wait after a Ping for the Pong (or any data) before the link is declared dead (reported as 1006, cause
    /// "keep-alive timeout"). Lifeline writes these pings itself, between ClientWebSocket's frames: the runtime's own
    /// pong check costs every received message a clock reading.
    /// Default 15 s. <see cref="Timeout.InfiniteTimeSpan"/> or zero checks nothing: the runtime then sends an unsolicited
    /// Pong every <see cref="KeepAliveInterval"/>, which keeps idle intermediaries open but finds no dead link.
    /// </summary>
    public TimeSpan KeepAliveTimeout
    {
        get => _keepAliveTimeout;
        set => _keepAliveTimeout = OptionGuard.NotNegativeOrInfinite(value);
    }

    /// <summary>
    /// Optional watchdog for servers that only send application heartbeats: with no message received within this
    /// period the link is declared dead (1006, cause "receive watchdog"). Default null (off). Positive when set.
    /// </summary>
    public TimeSpan? ReceiveWatchdog
    {
        get => _receiveWatchdog;
        set => _receiveWatchdog = OptionGuard.PositiveOrNull(value, "off");
    }

    /// <summary>The largest message accepted; a bigger one closes the connection with 1009. Default 1 MiB. At least 1.</summary>
    public int MaxMessageSize
    {
        get => _maxMessageSize;
        set => _maxMessageSize = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>The longest a connection attempt (TCP, TLS and upgrade) may take. Default 15 s. Positive.</summary>
    public TimeSpan ConnectTimeout
    {
        get => _connectTimeout;
        set => _connectTimeout = OptionGuard.Positive(value);
    }

    /// <summary>
    /// How long the receive loop leaves the socket to an application that reads before it reads ahead itself. Fixed for
    /// users; internal so that a test whose point is the order of frames can rule out a loaded machine's stalls.
    /// </summary>
    internal TimeSpan ReadAheadDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// How long a stop waits for the server's Close reply before aborting; also the bound on each step of the close after
    /// the client ended its session (sending the Close, then waiting for the reply). Default 5 s. Positive, at most 49 days.
    /// </summary>
    public TimeSpan CloseTimeout
    {
        get => _closeTimeout;
        set => _closeTimeout = OptionGuard.Positive(value);
    }

    /// <summary>A connection that stays up this long resets the attempt count (one that carried messages: a tenth of it). Default 10 s. Zero or more.</summary>
    public TimeSpan StablePeriod
    {
        get => _stablePeriod;
        set => _stablePeriod = OptionGuard.NotNegative(value);
    }

    /// <summary>
    /// Received messages held until the application reads them. Default 10,000. At least 1. When this or
    /// <see cref="ReceiveCapacityBytes"/> is reached the receive loop stops reading the socket until the
    /// application reads (backpressure; the <see cref="ReceiveWatchdog"/> is paused meanwhile). No Pong can be read
    /// while it waits either, so a reader that stalls for longer than <see cref="KeepAliveTimeout"/> gets the link
    /// declared dead. Read promptly. In session mode, while sent messages await the server's acks, the loop reads on past
    /// this by up to the server's replay bounds (the acks travel behind the Data), acknowledging what it reads past the
    /// bound only as the application takes messages.
    /// </summary>
    public int ReceiveCapacity
    {
        get => _receiveCapacity;
        set => _receiveCapacity = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>
    /// Payload bytes of received messages held until the application reads them. Default 16 MiB. At least 1. One
    /// message larger than this (up to <see cref="MaxMessageSize"/>) is still taken when nothing else is held.
    /// </summary>
    public long ReceiveCapacityBytes
    {
        get => _receiveCapacityBytes;
        set => _receiveCapacityBytes = OptionGuard.AtLeast(value, 1L);
    }

    /// <summary>
    /// The longest <see cref="BeforeConnect"/>, <see cref="OnReconnecting"/> or <see cref="OnReconnected"/> may run.
    /// Past it the hook's token is cancelled and the client carries on without waiting for it; a stop cancels the
    /// token at once. Default 10 s. Positive.
    /// </summary>
    public TimeSpan HookTimeout
    {
        get => _hookTimeout;
        set => _hookTimeout = OptionGuard.Positive(value);
    }

    /// <summary>The queue for sends made while disconnected.</summary>
    public SendQueueOptions SendQueue { get; } = new();

    /// <summary>
    /// Subprotocols offered in the upgrade, in order of preference: HTTP tokens, each once (not <c>lifeline.v1</c> when
    /// <see cref="Session"/> is set: the client offers it first itself). Checked by the client's constructor. Default none.
    /// </summary>
    public IList<string> SubProtocols => LazyInitializer.EnsureInitialized(ref _subProtocols);

    /// <summary>The subprotocols offered, without making a list for a client that offers none (most of them: a list is 32 B per idle client).</summary>
    internal IReadOnlyList<string> OfferedSubProtocols => _subProtocols ?? (IReadOnlyList<string>)[];

    /// <summary>Configures every new socket (proxy, TLS certificates and callbacks, cookies, HTTP version). Default none.</summary>
    public Action<ClientWebSocketOptions>? ConfigureWebSocket { get; set; }

    /// <summary>
    /// Runs before every attempt, after <see cref="ConfigureWebSocket"/>: refresh tokens and headers here. Its token
    /// is cancelled on stop, after <see cref="ConnectTimeout"/> and after <see cref="HookTimeout"/>; a hook that
    /// throws or overruns fails the attempt. Default none.
    /// </summary>
    public Func<ConnectAttemptContext, CancellationToken, ValueTask>? BeforeConnect { get; set; }

    /// <summary>
    /// Runs when the policy decided to reconnect; may change the delay or veto. Its token is cancelled on stop and
    /// after <see cref="HookTimeout"/>; a hook that throws or overruns leaves the policy's decision as it was. Default none.
    /// </summary>
    public Func<ReconnectingContext, CancellationToken, ValueTask>? OnReconnecting { get; set; }

    /// <summary>
    /// Runs after a reconnection: in plain mode before queued sends are flushed, in session mode while they are (see
    /// <see cref="ReconnectedContext"/>). Its token is cancelled on stop, when the connection is lost and after
    /// <see cref="HookTimeout"/>; then the queue is flushed without waiting for it. Default none.
    /// </summary>
    public Func<ReconnectedContext, CancellationToken, ValueTask>? OnReconnected { get; set; }

    /// <summary>
    /// Lossless sessions (<c>lifeline.v1</c>): null (the default) for plain mode; an instance to offer the
    /// subprotocol, number and acknowledge messages in both directions and resume after a reconnect. A server that
    /// does not select <c>lifeline.v1</c> is closed with 1010.
    /// </summary>
    public SessionOptions? Session { get; set; }

    /// <summary>
    /// Where the client's instruments (meter "Lifeline") are created: pass the host's <see cref="IMeterFactory"/> so that
    /// its measurements are told apart from other clients' (<c>Instrument.Meter.Scope</c> is the factory). Default null:
    /// one process-wide set of instruments shared by every client.
    /// </summary>
    public IMeterFactory? MeterFactory { get; set; }

    /// <summary>The clock for delays, timestamps and watchdogs. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Checks that the options make a usable client; throws <see cref="ArgumentException"/> naming the problem.</summary>
    public void Validate()
    {
        if (Uri is null)
        {
            throw new ArgumentException("LifelineClientOptions.Uri is required: the ws:// or wss:// address of the server.", nameof(Uri));
        }

        ArgumentNullException.ThrowIfNull(ReconnectPolicy);
        ArgumentNullException.ThrowIfNull(TimeProvider);
        CheckSubProtocols();
    }

    /// <summary>The checks ClientWebSocket makes at each connect, made once here with a message that says what to change.</summary>
    private void CheckSubProtocols()
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (Session is not null)
        {
            seen.Add(Lifeline.Session.Wire.SessionProtocol.SubProtocol);
        }

        foreach (var subProtocol in OfferedSubProtocols)
        {
            if (!OptionGuard.IsToken(subProtocol))
            {
                throw new ArgumentException(
                    $"SubProtocols holds '{subProtocol}', which is not a subprotocol name: letters, digits and !#$%&'*+-.^_`|~ only, no spaces or commas.",
                    nameof(SubProtocols));
            }

            if (!seen.Add(subProtocol))
            {
                throw new ArgumentException(
                    Session is not null && subProtocol.Equals(Lifeline.Session.Wire.SessionProtocol.SubProtocol, StringComparison.OrdinalIgnoreCase)
                        ? $"SubProtocols holds '{subProtocol}', which the client offers itself when Session is set; remove it from SubProtocols."
                        : $"SubProtocols holds '{subProtocol}' twice (names are compared without case); offer each once.",
                    nameof(SubProtocols));
            }
        }
    }

    internal bool KeepAliveChecksPong => KeepAliveInterval > TimeSpan.Zero && KeepAliveTimeout > TimeSpan.Zero && KeepAliveTimeout != Timeout.InfiniteTimeSpan;

    /// <summary>Checks a WebSocket address: absolute, scheme ws or wss.</summary>
    public static Uri CheckUri(Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (!uri.IsAbsoluteUri)
        {
            throw new ArgumentException($"'{uri}' is not an absolute URI; use ws://host:port/path or wss://host:port/path.", nameof(uri));
        }

        if (uri.Scheme != "ws" && uri.Scheme != "wss")
        {
            throw new ArgumentException($"'{uri}' has the scheme '{uri.Scheme}'; a WebSocket address starts with ws:// or wss://.", nameof(uri));
        }

        return uri;
    }
}
