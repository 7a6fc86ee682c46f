using Lifeline.CloseCodes;

namespace Lifeline.Reconnect;

/// <summary>Everything a reconnect policy may base its decision on.</summary>
/// <param name="Attempt">The number of the attempt about to be made, from 1; it restarts at 1 once a connection has stayed up for the stable period.</param>
/// <param name="Elapsed">The time since the connection was lost (or since the first attempt, before any connection).</param>
/// <param name="Kind">How the previous connection or attempt ended.</param>
/// <param name="CloseCode">The close code for a closed connection (1006 when no Close frame arrived); null for failed attempts.</param>
/// <param name="Reason">The close reason, if any.</param>
/// <param name="ServerHint">The server's <c>retry-after-ms</c> hint from the reason, or an HTTP Retry-After header.</param>
/// <param name="Exception">The exception behind a transport failure, if any.</param>
/// <param name="HttpStatusCode">The HTTP status of a rejected upgrade.</param>
/// <param name="PreviousDelay">The delay chosen before the previous attempt (for decorrelated jitter); null at the first.</param>
public sealed record ReconnectContext(
    int Attempt,
    TimeSpan Elapsed,
    DisconnectKind Kind,
    CloseCode? CloseCode = null,
    string? Reason = null,
    TimeSpan? ServerHint = null,
    Exception? Exception = null,
    int? HttpStatusCode = null,
    TimeSpan? PreviousDelay = null);
