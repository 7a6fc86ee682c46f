using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using Lifeline.Diagnostics.Probe;

namespace Lifeline.Diagnostics.Raw;

/// <summary>
/// A minimal WebSocket client over a raw socket, for diagnostics only: it times DNS, TCP, TLS and the upgrade
/// separately, keeps the upgrade response headers, sends pings it can time, and tells a Close frame from a FIN, an
/// RST and silence. (The product client, LifelineClient, uses ClientWebSocket; none of this framing is in it.)
/// </summary>
/// <remarks>One reader at a time; sends are serialised by a lock and may come from any thread.</remarks>
internal sealed class RawWebSocket : IAsyncDisposable
{
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private const int MaxCloseReasonBytes = 123;

    /// <summary>How long a refusal's body may take to follow its headers before it is given up.</summary>
    private static readonly TimeSpan BodyWait = TimeSpan.FromMilliseconds(500);

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly FrameReader _reader;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    private RawWebSocket(Socket socket, Stream stream, IPEndPoint remote, IReadOnlyList<IPAddress> addresses)
    {
        _socket = socket;
        _stream = stream;
        _reader = new FrameReader(stream, fromServer: true);
        RemoteEndPoint = remote;
        Addresses = addresses;
    }

    public IPEndPoint RemoteEndPoint { get; }

    public IReadOnlyList<IPAddress> Addresses { get; }

    public UpgradeResponse Response { get; private set; } = null!;

    public ConnectTimings Timings { get; private set; } = null!;

    /// <summary>Opens a WebSocket, or reports the stage that failed. Never throws for network failures.</summary>
    public static async Task<(RawWebSocket? Socket, ConnectionFailure? Failure, ConnectTimings? Partial)> ConnectAsync(
        Uri uri, RawConnectOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(options.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        var token = linked.Token;
        var stage = ProbeStage.Dns;
        var dns = TimeSpan.Zero;
        var tcp = TimeSpan.Zero;
        TimeSpan? tls = null;
        Socket? socket = null;
        IPAddress[] addresses = [];
        IPEndPoint? remote = null;
        try
        {
            var started = time.GetTimestamp();
            addresses = IPAddress.TryParse(uri.IdnHost, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(uri.IdnHost, token).ConfigureAwait(false);
            dns = time.GetElapsedTime(started);
            if (addresses.Length == 0)
            {
                return (null, new ConnectionFailure(stage, ConnectionFailureReason.NameNotResolved, $"the host name {uri.Host} resolves to no address"), null);
            }

            stage = ProbeStage.Tcp;
            started = time.GetTimestamp();
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var port = uri.Port > 0 ? uri.Port : uri.Scheme == "wss" ? 443 : 80;
            await socket.ConnectAsync(addresses, port, token).ConfigureAwait(false);
            tcp = time.GetElapsedTime(started);
            remote = (IPEndPoint)socket.RemoteEndPoint!;
            if (remote.Address.IsIPv4MappedToIPv6)
            {
                remote = new IPEndPoint(remote.Address.MapToIPv4(), remote.Port);
            }

            Stream stream = new NetworkStream(socket, ownsSocket: false);

            if (uri.Scheme == "wss")
            {
                stage = ProbeStage.Tls;
                started = time.GetTimestamp();
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
#pragma warning disable CA5359 // Only with AllowUntrustedCertificate, which the user asks for to probe a test server.
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = uri.IdnHost,
                    RemoteCertificateValidationCallback = options.AllowUntrustedCertificate ? (_, _, _, _) => true : null,
                }, token).ConfigureAwait(false);
#pragma warning restore CA5359
                tls = time.GetElapsedTime(started);
                stream = ssl;
            }

            stage = ProbeStage.Upgrade;
            started = time.GetTimestamp();
            var raw = new RawWebSocket(socket, stream, remote, addresses);
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            await raw.WriteAsync(Encoding.ASCII.GetBytes(UpgradeRequest(uri, key, options)), token).ConfigureAwait(false);
            var head = await raw._reader.ReadHeadAsync(token).ConfigureAwait(false);
            var headersReadAt = time.GetTimestamp();
            raw.Response = await raw.ParseResponseAsync(head, time, token).ConfigureAwait(false);
            var timings = new ConnectTimings(dns, tcp, tls, time.GetElapsedTime(started, headersReadAt)) { Addresses = addresses, Remote = remote };
            raw.Timings = timings;
            if (raw.Response.StatusCode != 101)
            {
                await raw.DisposeAsync().ConfigureAwait(false);
                return (null, new ConnectionFailure(stage, ConnectionFailureReason.UpgradeRefused, raw.Response.Explain(), raw.Response), timings);
            }

#pragma warning disable CA5350 // RFC 6455 fixes SHA-1 for Sec-WebSocket-Accept; it is a handshake check, not security.
            var expected = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));
#pragma warning restore CA5350
            if (raw.Response.GetHeader("Sec-WebSocket-Accept") != expected)
            {
                await raw.DisposeAsync().ConfigureAwait(false);
                return (null, new ConnectionFailure(stage, ConnectionFailureReason.InvalidAcceptKey,
                    "the server answered 101 but with a wrong Sec-WebSocket-Accept: it is not a conforming WebSocket server", raw.Response), timings);
            }

            var requested = options.SubProtocols ?? [];
            if (raw.Response.GetHeader("Sec-WebSocket-Protocol") is { Length: > 0 } chosen
                && !requested.Contains(chosen, StringComparer.OrdinalIgnoreCase))
            {
                await raw.DisposeAsync().ConfigureAwait(false);
                var offered = requested.Count == 0 ? "none was offered" : $"only {string.Join(", ", requested)} was offered";
                return (null, new ConnectionFailure(stage, ConnectionFailureReason.UnrequestedSubProtocol,
                    $"the server chose subprotocol '{chosen}', but {offered}: ClientWebSocket and browsers fail such a connection", raw.Response), timings);
            }

            socket = null; // owned by raw now
            return (raw, null, timings);
        }
        catch (Exception e) when (e is SocketException or IOException or AuthenticationException or OperationCanceledException or InvalidDataException
            || (e is ArgumentException && stage == ProbeStage.Dns)) // the resolver throws on a name too long to look up
        {
            var partial = new ConnectTimings(dns, tcp, tls, TimeSpan.Zero) { Addresses = addresses, Remote = remote };
            return (null, Describe(e, stage, uri, timeout.IsCancellationRequested, options.Timeout), partial);
        }
        finally
        {
            socket?.Dispose();
        }
    }

    public Task SendPingAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) => SendFrameAsync(RawFrame.Ping, payload, cancellationToken);

    public Task SendPongAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) => SendFrameAsync(RawFrame.Pong, payload, cancellationToken);

    /// <summary>Sends a Close frame with a code and a reason cut to the 123 bytes a Close frame can carry.</summary>
    public Task SendCloseAsync(int code, CancellationToken cancellationToken, string? reason = null)
    {
        var reasonBytes = Encoding.UTF8.GetBytes(reason ?? string.Empty);
        var length = Math.Min(reasonBytes.Length, MaxCloseReasonBytes);
        while (length > 0 && length < reasonBytes.Length && (reasonBytes[length] & 0xC0) == 0x80)
        {
            length--; // never cut a UTF-8 sequence in half
        }

        var payload = new byte[2 + length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)code);
        reasonBytes.AsSpan(0, length).CopyTo(payload.AsSpan(2));
        return SendFrameAsync(RawFrame.Close, payload, cancellationToken);
    }

    /// <summary>
    /// Reads the next frame. Throws <see cref="EndOfStreamException"/> on FIN, an IOException/SocketException on RST
    /// and <see cref="FrameException"/> when the server breaks the framing rules.
    /// </summary>
    public Task<RawFrame> ReadFrameAsync(CancellationToken cancellationToken) => _reader.ReadFrameAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
        _writeLock.Dispose();
    }

    internal static ConnectionFailure Describe(Exception e, ProbeStage stage, Uri uri, bool timedOut, TimeSpan timeout)
    {
        if (timedOut)
        {
            return new ConnectionFailure(stage, ConnectionFailureReason.TimedOut, string.Create(CultureInfo.InvariantCulture,
                $"no answer within {timeout.TotalSeconds:0.#} s during the {StageName(stage)} step (a firewall dropping packets, or an unreachable host)"));
        }

        var socketError = e as SocketException ?? e.InnerException as SocketException;
        var (reason, message) = (stage, socketError?.SocketErrorCode) switch
        {
            _ when e is OperationCanceledException => (ConnectionFailureReason.Canceled, $"{StageName(stage)} failed: {e.Message}"),
            (ProbeStage.Dns, _) => (ConnectionFailureReason.NameNotResolved, $"the host name {uri.Host} does not resolve ({e.Message})"),
            (ProbeStage.Tcp, SocketError.ConnectionRefused) => (ConnectionFailureReason.ConnectionRefused, $"connection refused: nothing listens on {uri.Host}:{uri.Port}"),
            (ProbeStage.Tcp, SocketError.NetworkUnreachable or SocketError.HostUnreachable) =>
                (ConnectionFailureReason.Unreachable, $"{uri.Host} is unreachable from here ({socketError!.SocketErrorCode})"),
            (ProbeStage.Tls, _) => (ConnectionFailureReason.TlsFailed, $"the TLS handshake failed: {e.Message}"),
            (ProbeStage.Upgrade, SocketError.ConnectionReset) => (ConnectionFailureReason.ConnectionReset, "the server reset the connection during the upgrade"),
            (ProbeStage.Upgrade, _) when e is EndOfStreamException =>
                (ConnectionFailureReason.ClosedWithoutAnswer, "the server closed the connection without answering the upgrade (not an HTTP server, or it rejected the request)"),
            (ProbeStage.Upgrade, _) when e is InvalidDataException => (ConnectionFailureReason.InvalidResponse, $"{StageName(stage)} failed: {e.Message}"),
            _ => (ConnectionFailureReason.Other, $"{StageName(stage)} failed: {e.Message}"),
        };
        return new ConnectionFailure(stage, reason, message);
    }

    /// <summary>The stage as the CLI and messages name it: dns, tcp, tls, upgrade.</summary>
    internal static string StageName(ProbeStage stage) => stage.ToString().ToLowerInvariant();

    private static string UpgradeRequest(Uri uri, string key, RawConnectOptions options)
    {
        var request = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"GET {uri.PathAndQuery} HTTP/1.1\r\n")
            .Append(CultureInfo.InvariantCulture, $"Host: {uri.Authority}\r\n")
            .Append("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
            .Append(CultureInfo.InvariantCulture, $"Sec-WebSocket-Key: {key}\r\n")
            .Append("User-Agent: lifeline-probe\r\n");
        if (options.Origin is { } origin)
        {
            request.Append(CultureInfo.InvariantCulture, $"Origin: {origin}\r\n");
        }

        if (options.SubProtocols is { Count: > 0 } protocols)
        {
            request.Append(CultureInfo.InvariantCulture, $"Sec-WebSocket-Protocol: {string.Join(", ", protocols)}\r\n");
        }

        return request.Append("\r\n").ToString();
    }

    private async Task<UpgradeResponse> ParseResponseAsync(string head, TimeProvider time, CancellationToken cancellationToken)
    {
        var lines = head.Split("\r\n");
        var status = lines[0].Split(' ', 3);
        if (status.Length < 2 || !status[0].StartsWith("HTTP/", StringComparison.Ordinal) || !int.TryParse(status[1], NumberStyles.None, CultureInfo.InvariantCulture, out var code))
        {
            throw new InvalidDataException($"the server did not answer with HTTP: '{lines[0]}'");
        }

        var headers = lines.Skip(1)
            .Select(line => line.Split(':', 2))
            .Where(parts => parts.Length == 2)
            .Select(parts => KeyValuePair.Create(parts[0].Trim(), parts[1].Trim()))
            .ToArray();
        var body = string.Empty;
        var contentLength = headers.FirstOrDefault(h => string.Equals(h.Key, "Content-Length", StringComparison.OrdinalIgnoreCase)).Value;
        if (code != 101 && contentLength != "0")
        {
            // Keep the start of a refusal's body: servers often explain themselves there.
            try
            {
                using var bodyWait = new CancellationTokenSource(BodyWait, time);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(bodyWait.Token, cancellationToken);
                if (_reader.Buffered == 0)
                {
                    await _reader.FillAsync(wait.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                // No body, or it is not coming: fine. (EndOfStreamException is an IOException.)
            }

            body = _reader.PeekText(300);
        }

        return new UpgradeResponse(code, status.Length > 2 ? status[2] : string.Empty, headers, body);
    }

    private async Task SendFrameAsync(byte opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (payload.Length > 125)
        {
            throw new ArgumentException("Control frames carry at most 125 bytes.", nameof(payload));
        }

        var frame = new byte[2 + 4 + payload.Length];
        frame[0] = (byte)(0x80 | opcode);
        frame[1] = (byte)(0x80 | payload.Length); // clients always mask
        RandomNumberGenerator.Fill(frame.AsSpan(2, 4));
        for (var i = 0; i < payload.Length; i++)
        {
            frame[6 + i] = (byte)(payload.Span[i] ^ frame[2 + (i % 4)]);
        }

        await WriteAsync(frame, cancellationToken).ConfigureAwait(false);
    }

    private async Task WriteAsync(byte[] data, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }
}
