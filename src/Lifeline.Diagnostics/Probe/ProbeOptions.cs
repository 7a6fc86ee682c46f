namespace Lifeline.Diagnostics.Probe;

/// <summary>Settings of one <see cref="WebSocketProbe.RunAsync"/>.</summary>
/// <remarks>Setters check their value and throw <see cref="ArgumentException"/> at once; the probe reads the options once, at start.</remarks>
public sealed class ProbeOptions
{
    private Uri _uri;
    private TimeSpan _connectTimeout = TimeSpan.FromSeconds(10);
    private int _pings = 5;
    private TimeSpan _pingTimeout = TimeSpan.FromSeconds(2);
    private TimeSpan _pingInterval = TimeSpan.FromMilliseconds(100);
    private TimeSpan _watchDuration = TimeSpan.FromSeconds(10);
    private IReadOnlyList<string> _subProtocols = [];
    private string? _origin;
    private TimeProvider _timeProvider = TimeProvider.System;

    /// <summary>Creates options for probing <paramref name="uri"/>.</summary>
    /// <param name="uri">An absolute ws:// or wss:// address.</param>
    public ProbeOptions(Uri uri) => _uri = OptionGuard.WebSocketUri(uri, nameof(Uri));

    /// <summary>The address to probe: an absolute ws:// or wss:// URI. Set by the constructor.</summary>
    public Uri Uri
    {
        get => _uri;
        set => _uri = OptionGuard.WebSocketUri(value);
    }

    /// <summary>Time allowed for DNS, TCP, TLS and the upgrade together. Positive. Default 10 s.</summary>
    public TimeSpan ConnectTimeout
    {
        get => _connectTimeout;
        set => _connectTimeout = OptionGuard.Positive(value);
    }

    /// <summary>An Origin header to send (servers that check origins answer 403 without one). Default null: none sent.</summary>
    public string? Origin
    {
        get => _origin;
        set => _origin = OptionGuard.HeaderValue(value);
    }

    /// <summary>Subprotocols to offer in Sec-WebSocket-Protocol. Default empty: none offered.</summary>
    public IReadOnlyList<string> SubProtocols
    {
        get => _subProtocols;
        set => _subProtocols = OptionGuard.SubProtocols(value);
    }

    /// <summary>INSECURE: accept any TLS certificate (test servers only). Default false.</summary>
    public bool AllowUntrustedCertificate { get; set; }

    /// <summary>How many ping round trips to time once the connection is open: 0-1000. Default 5.</summary>
    public int Pings
    {
        get => _pings;
        set => _pings = OptionGuard.InRange(value, 0, 1000);
    }

    /// <summary>How long to wait for each pong before counting the ping as lost. Positive. Default 2 s.</summary>
    public TimeSpan PingTimeout
    {
        get => _pingTimeout;
        set => _pingTimeout = OptionGuard.Positive(value);
    }

    /// <summary>The pause after each ping round trip. Zero or more. Default 100 ms.</summary>
    public TimeSpan PingInterval
    {
        get => _pingInterval;
        set => _pingInterval = OptionGuard.NotNegative(value);
    }

    /// <summary>
    /// How long to keep the connection open after the pings, sending nothing, to see how it ends. Zero or more. Default
    /// 10 s. A connection still open at the end is closed by the probe with 1000.
    /// </summary>
    public TimeSpan WatchDuration
    {
        get => _watchDuration;
        set => _watchDuration = OptionGuard.NotNegative(value);
    }

    /// <summary>The clock for every timing and timeout. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider
    {
        get => _timeProvider;
        set => _timeProvider = value ?? throw new ArgumentNullException(nameof(value));
    }
}
