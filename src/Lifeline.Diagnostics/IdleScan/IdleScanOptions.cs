namespace Lifeline.Diagnostics.IdleScan;

/// <summary>Settings of one <see cref="IdleScanner.ScanAsync"/>.</summary>
/// <remarks>
/// Setters check their own value and throw <see cref="ArgumentException"/> at once; that
/// <see cref="MaxSilence"/> is larger than <see cref="MinSilence"/> is checked when the scan starts.
/// </remarks>
public sealed class IdleScanOptions
{
    private Uri _uri;
    private TimeSpan _minSilence = TimeSpan.FromSeconds(5);
    private TimeSpan _maxSilence = TimeSpan.FromSeconds(600);
    private int _parallel = 4;
    private TimeSpan _resolution = TimeSpan.FromSeconds(0.5);
    private TimeSpan _pongTimeout = TimeSpan.FromSeconds(2);
    private TimeSpan _connectTimeout = TimeSpan.FromSeconds(10);
    private int _maxRounds = 12;
    private IReadOnlyList<string> _subProtocols = [];
    private string? _origin;
    private TimeProvider _timeProvider = TimeProvider.System;

    /// <summary>Creates options for scanning the path to <paramref name="uri"/>.</summary>
    /// <param name="uri">An absolute ws:// or wss:// address.</param>
    public IdleScanOptions(Uri uri) => _uri = OptionGuard.WebSocketUri(uri, nameof(Uri));

    /// <summary>The address to scan through: an absolute ws:// or wss:// URI. Set by the constructor.</summary>
    public Uri Uri
    {
        get => _uri;
        set => _uri = OptionGuard.WebSocketUri(value);
    }

    /// <summary>The shortest silence tried. Positive. Default 5 s.</summary>
    public TimeSpan MinSilence
    {
        get => _minSilence;
        set => _minSilence = OptionGuard.Positive(value);
    }

    /// <summary>The longest silence tried; it bounds the scan. Positive and larger than <see cref="MinSilence"/>. Default 600 s.</summary>
    public TimeSpan MaxSilence
    {
        get => _maxSilence;
        set => _maxSilence = OptionGuard.Positive(value);
    }

    /// <summary>How many connections are held silent at once: 1-32. Default 4.</summary>
    public int Parallel
    {
        get => _parallel;
        set => _parallel = OptionGuard.InRange(value, 1, 32);
    }

    /// <summary>Stop narrowing a silent drop once the range between survivor and victim is this small. Positive. Default 0.5 s.</summary>
    public TimeSpan Resolution
    {
        get => _resolution;
        set => _resolution = OptionGuard.Positive(value);
    }

    /// <summary>How long to wait for a pong: to the first ping, which shows a connection is held, and to the one after a silence, which tells a live link. Positive. Default 2 s.</summary>
    public TimeSpan PongTimeout
    {
        get => _pongTimeout;
        set => _pongTimeout = OptionGuard.Positive(value);
    }

    /// <summary>Time allowed to open each connection. Positive. Default 10 s.</summary>
    public TimeSpan ConnectTimeout
    {
        get => _connectTimeout;
        set => _connectTimeout = OptionGuard.Positive(value);
    }

    /// <summary>The most rounds the scan runs before it reports the range it has: 1-100. Default 12.</summary>
    public int MaxRounds
    {
        get => _maxRounds;
        set => _maxRounds = OptionGuard.InRange(value, 1, 100);
    }

    /// <summary>An Origin header to send on every connection. Default null: none sent.</summary>
    public string? Origin
    {
        get => _origin;
        set => _origin = OptionGuard.HeaderValue(value);
    }

    /// <summary>Subprotocols to offer on every connection. Default empty: none offered.</summary>
    public IReadOnlyList<string> SubProtocols
    {
        get => _subProtocols;
        set => _subProtocols = OptionGuard.SubProtocols(value);
    }

    /// <summary>INSECURE: accept any TLS certificate (test servers only). Default false.</summary>
    public bool AllowUntrustedCertificate { get; set; }

    /// <summary>The clock for silences, timeouts and progress. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider
    {
        get => _timeProvider;
        set => _timeProvider = value ?? throw new ArgumentNullException(nameof(value));
    }

    internal void Validate()
    {
        if (MaxSilence <= MinSilence)
        {
            throw new ArgumentException(
                $"IdleScanOptions.MaxSilence ({MaxSilence}) must be larger than MinSilence ({MinSilence}).", nameof(MaxSilence));
        }
    }
}
