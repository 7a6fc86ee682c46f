namespace Lifeline.Diagnostics.Probe;

/// <summary>The HTTP response to a WebSocket upgrade request, as read off the wire.</summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed class UpgradeResponse
{
    internal UpgradeResponse(int statusCode, string reasonPhrase, IReadOnlyList<KeyValuePair<string, string>> headers, string bodyStart)
    {
        StatusCode = statusCode;
        ReasonPhrase = reasonPhrase;
        Headers = headers;
        BodyStart = bodyStart;
    }

    /// <summary>The status code: 101 when the server switched to WebSocket.</summary>
    public int StatusCode { get; }

    /// <summary>The reason phrase after the status code (may be empty).</summary>
    public string ReasonPhrase { get; }

    /// <summary>Every header line in the order received; a name sent several times appears several times.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; }

    /// <summary>The start of the body of a refusal (at most 300 bytes, as UTF-8): servers often explain themselves there. Empty for 101.</summary>
    public string BodyStart { get; }

    /// <summary>The headers by name, case-insensitive; a name sent several times (Set-Cookie, Vary) has its values joined with ", ".</summary>
    public IReadOnlyDictionary<string, string> GetHeaderMap() =>
        Headers.GroupBy(h => h.Key, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => string.Join(", ", g.Select(h => h.Value)), StringComparer.OrdinalIgnoreCase);

    /// <summary>The first value of a header, or null when it was not sent.</summary>
    public string? GetHeader(string name) =>
        Headers.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    /// <summary>What the status usually means, in an English sentence.</summary>
    public string Explain() => StatusCode switch
    {
        101 => "switched protocols: the WebSocket is open",
        400 => "400 Bad Request: the server rejected the upgrade request (missing or malformed WebSocket headers, or the path expects other parameters)",
        401 => "401 Unauthorized: the endpoint needs credentials (a token in a header, cookie or query string)",
        403 => "403 Forbidden: often an Origin check; retry with --origin set to an allowed site, or check the credentials",
        404 => "404 Not Found: there is no endpoint at this path; check the URL path",
        405 => "405 Method Not Allowed: the path exists but does not accept a WebSocket upgrade",
        426 => "426 Upgrade Required: the server wants another protocol version or a TLS connection (try wss://)",
        429 => "429 Too Many Requests: rate limited" + RetryAfterText(),
        503 => "503 Service Unavailable: overloaded or restarting" + RetryAfterText(),
        >= 200 and < 300 => $"{StatusCode} {ReasonPhrase}: a plain HTTP endpoint answered without upgrading; this URL is not a WebSocket endpoint",
        >= 300 and < 400 => $"{StatusCode} {ReasonPhrase}: a redirect to {GetHeader("Location") ?? "(no Location header)"}; WebSocket clients do not follow redirects, use the target URL",
        >= 500 => $"{StatusCode} {ReasonPhrase}: the server failed while handling the upgrade",
        _ => $"{StatusCode} {ReasonPhrase}: the server refused the upgrade",
    };

    private string RetryAfterText() => GetHeader("Retry-After") is { } retry ? $"; Retry-After: {retry}" : string.Empty;
}
