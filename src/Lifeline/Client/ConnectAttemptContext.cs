using System.Net.WebSockets;

namespace Lifeline.Client;

/// <summary>
/// Passed to <see cref="LifelineClientOptions.BeforeConnect"/> before every attempt, so that headers and tokens
/// can be refreshed (an expired token is a common cause of reconnect loops).
/// </summary>
public sealed class ConnectAttemptContext
{
    internal ConnectAttemptContext(int attempt, Uri uri, ClientWebSocketOptions options)
    {
        Attempt = attempt;
        Uri = uri;
        Options = options;
    }

    /// <summary>The attempt number within the current outage, from 1.</summary>
    public int Attempt { get; }

    /// <summary>The address to connect to; may be replaced (e.g. a new query-string token).</summary>
    public Uri Uri { get; set; }

    /// <summary>The options of the socket about to connect: set headers, cookies, certificates here.</summary>
    public ClientWebSocketOptions Options { get; }
}
