using System.Net;

namespace Lifeline.Client;

/// <summary>
/// The HTTP handler ClientWebSocket connects through: when the server accepts the upgrade it puts a <see cref="LinkStream"/>
/// between the connection's stream and the WebSocket, for Lifeline's keep-alive.
/// </summary>
internal sealed class UpgradeCapture(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    /// <summary>The upgraded connection's stream, once the server accepted.</summary>
    public LinkStream? Stream { get; private set; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        // HTTP/1.1 answers 101 and the stream is the WebSocket's bytes as they come, which LinkStream can read frame by
        // frame; over HTTP/2 (200) it is passed through.
        var http11 = response.StatusCode == HttpStatusCode.SwitchingProtocols;
        var upgraded = http11 || (response.Version.Major >= 2 && response.StatusCode == HttpStatusCode.OK);
        if (upgraded && response.Content is { } original)
        {
            Stream = new LinkStream(await original.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), framed: http11);
            var content = new UpgradedContent(Stream);
            foreach (var header in original.Headers)
            {
                content.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }

            response.Content = content;
        }

        return response;
    }

    /// <summary>The response body of an accepted upgrade: the WebSocket's stream, handed out as is.</summary>
    private sealed class UpgradedContent(Stream stream) : HttpContent
    {
        protected override Stream CreateContentReadStream(CancellationToken cancellationToken) => stream;

        protected override Task<Stream> CreateContentReadStreamAsync() => Task.FromResult(stream);

        protected override Task SerializeToStreamAsync(Stream target, TransportContext? context) =>
            throw new NotSupportedException("An upgraded connection's stream cannot be copied.");

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        // ClientWebSocket disposes the response only when the connect fails after the upgrade (a wrong subprotocol or
        // header, a timeout): the connection must then close, as the content replaced here would have closed it.
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                stream.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
