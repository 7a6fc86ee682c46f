using Lifeline.Reconnect;

namespace Lifeline.Client;

/// <summary>Why a connection attempt failed before the WebSocket opened.</summary>
/// <param name="Kind"><see cref="DisconnectKind.HandshakeRejected"/> or <see cref="DisconnectKind.ConnectFailed"/>.</param>
/// <param name="HttpStatusCode">The HTTP status of a rejected upgrade.</param>
/// <param name="RetryAfter">The server's Retry-After header, if any.</param>
/// <param name="Exception">The exception that ended the attempt.</param>
/// <param name="Cause">A short description such as "connection refused", "HTTP 401", "connect timeout".</param>
public sealed record ConnectFailure(DisconnectKind Kind, int? HttpStatusCode, TimeSpan? RetryAfter, Exception? Exception, string Cause);
