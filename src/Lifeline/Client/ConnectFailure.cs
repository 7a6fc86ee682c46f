using Lifeline.Reconnect;

namespace Lifeline.Client;

/// <summary>Why a connection attempt failed before the WebSocket opened.</summary>
/// <remarks>Immutable; properties may be added in later versions.</remarks>
public sealed class ConnectFailure
{
    /// <summary><see cref="DisconnectKind.HandshakeRejected"/> or <see cref="DisconnectKind.ConnectFailed"/>.</summary>
    public required DisconnectKind Kind { get; init; }

    /// <summary>The HTTP status of a rejected upgrade.</summary>
    public int? HttpStatusCode { get; init; }

    /// <summary>The server's Retry-After header, if any.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>The exception that ended the attempt.</summary>
    public Exception? Exception { get; init; }

    /// <summary>Why it failed, as a value to switch on.</summary>
    public required ConnectFailureCause Cause { get; init; }

    /// <summary>The same in words for people, e.g. "connection refused", "the server refused the upgrade with HTTP 401". Not for matching in code: use <see cref="Cause"/>.</summary>
    public required string Description { get; init; }

    /// <inheritdoc />
    public override string ToString() => Description;
}
