namespace Lifeline.Diagnostics.Raw;

/// <summary>Settings for one diagnostic connection, taken from the public options.</summary>
internal sealed record RawConnectOptions(TimeSpan Timeout, string? Origin = null, IReadOnlyList<string>? SubProtocols = null, bool AllowUntrustedCertificate = false);

/// <summary>
/// How long each step of opening a WebSocket took (<see cref="Tls"/> is null for ws://), and where it went: the
/// addresses the host resolved to and the one that answered (null until TCP connected), kept for a failed attempt too.
/// </summary>
internal sealed record ConnectTimings(TimeSpan Dns, TimeSpan Tcp, TimeSpan? Tls, TimeSpan Upgrade)
{
    public IReadOnlyList<System.Net.IPAddress> Addresses { get; init; } = [];

    public System.Net.IPEndPoint? Remote { get; init; }
}
