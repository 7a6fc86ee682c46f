using System.Net;

namespace Lifeline.Diagnostics.Probe;

/// <summary>Everything one probe found out: timings, the upgrade response, ping round trips and how the connection ended.</summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed class ProbeResult
{
    internal ProbeResult(Uri uri)
    {
        Uri = uri;
    }

    /// <summary>The address probed.</summary>
    public Uri Uri { get; }

    /// <summary>True when the WebSocket opened (<see cref="Failure"/> is null).</summary>
    public bool Succeeded => Failure is null;

    /// <summary>Where and why the connection could not be opened; null when it opened.</summary>
    public ConnectionFailure? Failure { get; internal init; }

    /// <summary>The addresses the host name resolved to (an IP address: itself); empty only when it did not resolve.</summary>
    public IReadOnlyList<IPAddress> Addresses { get; internal init; } = [];

    /// <summary>The address and port actually connected to; null when TCP did not connect (set when TLS or the upgrade failed).</summary>
    public IPEndPoint? RemoteEndPoint { get; internal init; }

    /// <summary>How long DNS took; null when no time was measured (no address found).</summary>
    public TimeSpan? DnsTime { get; internal init; }

    /// <summary>How long the TCP connect took; null when it did not complete.</summary>
    public TimeSpan? TcpTime { get; internal init; }

    /// <summary>How long the TLS handshake took; null for ws:// or when it did not complete.</summary>
    public TimeSpan? TlsTime { get; internal init; }

    /// <summary>From sending the upgrade request to the end of the response headers; null when no response came.</summary>
    public TimeSpan? UpgradeTime { get; internal init; }

    /// <summary>The HTTP response to the upgrade (101 on success, the refusal otherwise); null when none came.</summary>
    public UpgradeResponse? Response { get; internal init; }

    /// <summary>The subprotocol the server chose; null for none.</summary>
    public string? SubProtocol => Succeeded ? Response?.GetHeader("Sec-WebSocket-Protocol") : null;

    /// <summary>The extensions the server accepted (Sec-WebSocket-Extensions); null for none.</summary>
    public string? Extensions => Succeeded ? Response?.GetHeader("Sec-WebSocket-Extensions") : null;

    /// <summary>The round-trip time of every ping that got its pong, in order.</summary>
    public IReadOnlyList<TimeSpan> PingRoundTrips { get; internal init; } = [];

    /// <summary>How many pings got no pong within <see cref="ProbeOptions.PingTimeout"/>.</summary>
    public int PingsLost { get; internal init; }

    /// <summary>How the connection ended; null when it never opened or the probe was <see cref="Interrupted"/>.</summary>
    public ConnectionEnd? End { get; internal init; }

    /// <summary>True when the connection was still open after <see cref="ProbeOptions.WatchDuration"/>, or when the probe was interrupted, and the probe closed it with 1000.</summary>
    public bool ClosedByProbe { get; internal init; }

    /// <summary>
    /// True when the caller's token stopped the probe after the connection opened: the timings and pings are what was
    /// measured until then, <see cref="End"/> is null (how the connection would have ended is unknown), and the probe
    /// closed the connection with 1000. Stopped before the connection opened, <see cref="WebSocketProbe.RunAsync"/> throws.
    /// </summary>
    public bool Interrupted { get; internal init; }
}
