using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;

namespace Lifeline.Client;

/// <summary>
/// Builds the HTTP invoker a ClientWebSocket connects through when Lifeline does the keep-alive itself (see
/// <see cref="LinkStream"/>). The handler gets what ClientWebSocket would have put on its own: proxy, credentials,
/// cookies, client certificates and certificate validation; those options are then cleared, as ClientWebSocket refuses
/// them beside an invoker.
/// </summary>
internal static class WebSocketInvoker
{
    // ClientWebSocketOptions.Proxy's default: a marker meaning "the system proxy".
    private static readonly IWebProxy? SystemProxyMarker = ReadDefaultProxy();
    private static SocketsHttpHandler? s_systemProxy;
    private static SocketsHttpHandler? s_noProxy;

    // What each socket's options are left with once their certificates moved to the handler: one shared empty collection,
    // so that an idle connection does not keep a collection of its own (56 B). Nothing adds to it: the options are the
    // connection attempt's own, and past this point only ClientWebSocket reads them.
    private static readonly X509CertificateCollection NoCertificates = [];

    /// <summary>The invoker for one connection attempt, and the handler that captures its stream. Dispose the invoker after the attempt.</summary>
    public static (HttpMessageInvoker Invoker, UpgradeCapture Capture) Create(ClientWebSocketOptions options)
    {
        var proxy = options.Proxy;
        var usesSystemProxy = proxy is not null && ReferenceEquals(proxy, SystemProxyMarker);
        var custom = options.UseDefaultCredentials || options.Credentials is not null || options.Cookies is not null ||
            options.RemoteCertificateValidationCallback is not null || options.ClientCertificates.Count > 0 || (proxy is not null && !usesSystemProxy);

        SocketsHttpHandler handler;
        if (!custom)
        {
            // Shared, as ClientWebSocket shares its own: upgraded connections never go back to the pool.
            handler = usesSystemProxy
                ? LazyInitializer.EnsureInitialized(ref s_systemProxy, static () => NewHandler(useProxy: true))
                : LazyInitializer.EnsureInitialized(ref s_noProxy, static () => NewHandler(useProxy: false));
        }
        else
        {
            handler = NewHandler(useProxy: proxy is not null);
            if (proxy is not null && !usesSystemProxy)
            {
                handler.Proxy = proxy;
            }

            handler.Credentials = options.UseDefaultCredentials ? CredentialCache.DefaultCredentials : options.Credentials;
            if (options.Cookies is { } cookies)
            {
                handler.CookieContainer = cookies;
                handler.UseCookies = true;
            }

            handler.SslOptions.RemoteCertificateValidationCallback = options.RemoteCertificateValidationCallback;
            if (options.ClientCertificates.Count > 0)
            {
                handler.SslOptions.ClientCertificates = new X509CertificateCollection(options.ClientCertificates);
            }
        }

        options.Proxy = null;
        options.Credentials = null;
        options.UseDefaultCredentials = false;
        options.Cookies = null;
        options.RemoteCertificateValidationCallback = null;
        options.ClientCertificates = NoCertificates; // not cleared in place: the collection the application set may be its own, reused

        var capture = new UpgradeCapture(handler);
        return (new HttpMessageInvoker(capture, disposeHandler: custom), capture);
    }

    private static SocketsHttpHandler NewHandler(bool useProxy) => new()
    {
        PooledConnectionLifetime = TimeSpan.Zero,
        UseProxy = useProxy,
        UseCookies = false,
    };

    private static IWebProxy? ReadDefaultProxy()
    {
        using var probe = new ClientWebSocket();
        return probe.Options.Proxy;
    }
}
