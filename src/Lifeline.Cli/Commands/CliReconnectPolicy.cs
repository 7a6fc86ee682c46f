using System.Net.Sockets;
using System.Security.Authentication;
using Lifeline.Reconnect;

namespace Lifeline.Cli.Commands;

/// <summary>
/// The reconnect policy of <c>lifeline connect</c>: the default close-code-aware policy, plus what a command line
/// needs: stop on an endpoint that answers HTTP without upgrading (200, a redirect), on a name that does not
/// resolve, on a TLS handshake that failed (an untrusted certificate does not fix itself between two attempts), and after
/// <c>--retries</c> attempts in a row.
/// </summary>
/// <remarks>Called by the client's connection loop only, one call at a time.</remarks>
internal sealed class CliReconnectPolicy(IReconnectPolicy inner, int? maxRetries) : IReconnectPolicy
{
    private int _retries;

    /// <summary>Why this policy (rather than the inner one) stopped, for the final message.</summary>
    public string? StopReason { get; private set; }

    public TimeSpan? NextDelay(ReconnectContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Kind == DisconnectKind.HandshakeRejected && context.HttpStatusCode is < 400)
        {
            StopReason = $"the server answered HTTP {context.HttpStatusCode} instead of upgrading to a WebSocket (is this the right path?)";
            return null;
        }

        if (Find<SocketException>(context.Exception) is { SocketErrorCode: SocketError.HostNotFound or SocketError.NoData })
        {
            StopReason = "the host name could not be resolved";
            return null;
        }

        if (Find<AuthenticationException>(context.Exception) is { } tls)
        {
            StopReason = $"the TLS handshake failed: {tls.Message} (a certificate this machine does not trust: --insecure skips the check, for testing only)";
            return null;
        }

        var delay = inner.NextDelay(context);
        if (delay is null)
        {
            return null;
        }

        // Attempt 1 after a closed connection means it had stayed up long enough to start a new outage.
        if (context.Kind == DisconnectKind.ConnectionClosed && context.Attempt == 1)
        {
            _retries = 0;
        }

        if (maxRetries is { } max && _retries >= max)
        {
            var last = context.HttpStatusCode is { } status ? $"HTTP {status}" : context.Code is { } code ? $"closed with {code}" : context.Exception?.GetBaseException().Message ?? "failed";
            StopReason = (max == 0 ? "--retries 0: no reconnect attempts" : $"--retries {max}: gave up after {max} reconnect attempt(s) in a row") + $"; last: {last}";
            return null;
        }

        _retries++;
        return delay;
    }

    /// <summary>The first exception of type <typeparamref name="T"/> in <paramref name="exception"/>'s chain of inner ones.</summary>
    private static T? Find<T>(Exception? exception)
        where T : Exception
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }
        }

        return null;
    }
}
