using System.Net;

namespace Lifeline.FaultProxy;

/// <summary>Settings of a <see cref="TcpFaultProxy"/>.</summary>
public sealed class FaultProxyOptions
{
    private TimeSpan _connectTimeout = TimeSpan.FromSeconds(5);
    private TimeSpan _idleCheckInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Where the proxy listens. Default 127.0.0.1 on a free port (read it back from <see cref="TcpFaultProxy.EndPoint"/>).</summary>
    public IPEndPoint ListenEndPoint { get; set; } = new(IPAddress.Loopback, 0);

    /// <summary>The upstream host name or address. Required.</summary>
    public string UpstreamHost { get; set; } = string.Empty;

    /// <summary>The upstream port (1-65535). Required.</summary>
    public int UpstreamPort { get; set; }

    /// <summary>The longest a timer waits (about 49.7 days): a longer duration made the timer that uses it throw.</summary>
    internal static readonly TimeSpan LongestTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>How long to wait for the upstream connection before resetting the client. Default 5 s.</summary>
    public TimeSpan ConnectTimeout
    {
        get => _connectTimeout;
        set => _connectTimeout = value > TimeSpan.Zero && value <= LongestTimer ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, "ConnectTimeout must be positive and at most 49 days (the longest a timer waits).");
    }

    /// <summary>How often idle links are checked against the idle cut. Default 100 ms; it bounds the cut's precision.</summary>
    public TimeSpan IdleCheckInterval
    {
        get => _idleCheckInterval;
        set => _idleCheckInterval = value > TimeSpan.Zero && value <= LongestTimer ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, "IdleCheckInterval must be positive and at most 49 days (the longest a timer waits).");
    }

    /// <summary>
    /// The clock used for idle tracking, timed faults and the delays of latency toxics (see <see cref="Toxics.LatencyToxic"/>).
    /// Default <see cref="TimeProvider.System"/>.
    /// </summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(UpstreamHost))
        {
            throw new ArgumentException("FaultProxyOptions.UpstreamHost is required: the host the proxy forwards to, e.g. 127.0.0.1.", nameof(UpstreamHost));
        }

        if (UpstreamPort is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(UpstreamPort), UpstreamPort, "FaultProxyOptions.UpstreamPort must be 1-65535.");
        }

        ArgumentNullException.ThrowIfNull(ListenEndPoint);
        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}
