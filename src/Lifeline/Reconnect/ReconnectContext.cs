using Lifeline.CloseCodes;

namespace Lifeline.Reconnect;

/// <summary>Everything a reconnect policy may base its decision on.</summary>
/// <remarks>Immutable; new properties may be added in later versions without breaking callers that set only some.</remarks>
public sealed record ReconnectContext
{
    /// <summary>The number of the attempt about to be made, from 1; it restarts at 1 after a connection that stayed up for the stable period, or carried messages and stayed up for a tenth of it.</summary>
    public required int Attempt { get; init; }

    /// <summary>The time since the connection was lost (or since the first attempt, before any connection).</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>How the previous connection or attempt ended.</summary>
    public required DisconnectKind Kind { get; init; }

    /// <summary>The close code for a closed connection (1006 when no Close frame arrived); null for failed attempts.</summary>
    public CloseCode? Code { get; init; }

    /// <summary>The close reason, if any.</summary>
    public string? Reason { get; init; }

    /// <summary>The server's <c>retry-after-ms</c> hint from the reason, or an HTTP Retry-After header.</summary>
    public TimeSpan? ServerHint { get; init; }

    /// <summary>The exception behind a transport failure, if any.</summary>
    public Exception? Exception { get; init; }

    /// <summary>The HTTP status of a rejected upgrade.</summary>
    public int? HttpStatusCode { get; init; }

    /// <summary>The delay chosen before the previous attempt (for decorrelated jitter); null at the first.</summary>
    public TimeSpan? PreviousDelay { get; init; }

    /// <summary>
    /// The close code of the connection whose loss began this outage (for example 1012), kept for the failed
    /// attempts that follow it; null before any connection. Lets a policy tell "refused while the announced
    /// restart is under way" from "refused out of the blue".
    /// </summary>
    public CloseCode? OutageCode { get; init; }
}
