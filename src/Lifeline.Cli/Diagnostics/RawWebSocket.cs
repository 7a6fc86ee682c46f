using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;

namespace Lifeline.Cli.Diagnostics;

/// <summary>Where a diagnostic connection attempt failed, and why.</summary>
internal sealed record ConnectFailureReport(string Stage, string Cause, UpgradeResponse? Response = null);

/// <summary>How long each step of opening a WebSocket took.</summary>
internal sealed record ConnectTimings(TimeSpan Dns, TimeSpan Tcp, TimeSpan? Tls, TimeSpan Upgrade);

/// <summary>Settings for a diagnostic connection.</summary>
internal sealed record RawConnectOptions(TimeSpan Timeout, string? Origin = null, IReadOnlyList<string>? SubProtocols = null, bool AllowUntrustedCertificate = false);

/// <summary>
/// A minimal WebSocket client over a raw socket, for diagnostics only: it times DNS, TCP, TLS and the upgrade
/// separately, keeps the upgrade response headers, sends pings it can time, and tells a Close frame from a FIN, an
/// RST and silence. (The product client, LifelineClient, uses ClientWebSocket; none of this framing is in it.)
/// </summary>
internal sealed class RawWebSocket : IAsyncDisposable
{
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private const int MaxPayload = 64 * 1024 * 1024;

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private int _start;
    private int _end;
    private long _headersReadAt;

    private RawWebSocket(Socket socket, Stream stream, IPEndPoint remote, IReadOnlyList<IPAddress> addresses)
    {
        _socket = socket;
        _stream = stream;
        RemoteEndPoint = remote;
        Addresses = addresses;
    }

    public IPEndPoint RemoteEndPoint { get; }

    public IReadOnlyList<IPAddress> Addresses { get; }

    public UpgradeResponse Response { get; private set; } = null!;

    public ConnectTimings Timings { get; private set; } = null!;

    /// <summary>Opens a WebSocket, or reports the stage that failed. Never throws for network failures.</summary>
    public static async Task<(RawWebSocket? Socket, ConnectFailureReport? Failure, ConnectTimings? Partial)> ConnectAsync(
        Uri uri, RawConnectOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(options.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        var token = linked.Token;
        var stage = "dns";
        var dns = TimeSpan.Zero;
        var tcp = TimeSpan.Zero;
        TimeSpan? tls = null;
        Socket? socket = null;
        try
        {
            var started = time.GetTimestamp();
            var addresses = IPAddress.TryParse(uri.IdnHost, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(uri.IdnHost, token).ConfigureAwait(false);
            dns = time.GetElapsedTime(started);
            if (addresses.Length == 0)
            {
                return (null, new ConnectFailureReport(stage, $"the host name {uri.Host} resolves to no address"), null);
            }

            stage = "tcp";
            started = time.GetTimestamp();
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var port = uri.Port > 0 ? uri.Port : uri.Scheme == "wss" ? 443 : 80;
            await socket.ConnectAsync(addresses, port, token).ConfigureAwait(false);
            tcp = time.GetElapsedTime(started);
            Stream stream = new NetworkStream(socket, ownsSocket: false);

            if (uri.Scheme == "wss")
            {
                stage = "tls";
                started = time.GetTimestamp();
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
#pragma warning disable CA5359 // Only with --insecure, which the user asks for to probe a test server.
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = uri.IdnHost,
                    RemoteCertificateValidationCallback = options.AllowUntrustedCertificate ? (_, _, _, _) => true : null,
                }, token).ConfigureAwait(false);
#pragma warning restore CA5359
                tls = time.GetElapsedTime(started);
                stream = ssl;
            }

            stage = "upgrade";
            started = time.GetTimestamp();
            var remote = (IPEndPoint)socket.RemoteEndPoint!;
            if (remote.Address.IsIPv4MappedToIPv6)
            {
                remote = new IPEndPoint(remote.Address.MapToIPv4(), remote.Port);
            }

            var raw = new RawWebSocket(socket, stream, remote, addresses);
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            await raw.WriteAsync(Encoding.ASCII.GetBytes(UpgradeRequest(uri, key, options)), token).ConfigureAwait(false);
            raw.Response = await raw.ReadResponseAsync(time, token).ConfigureAwait(false);
            var timings = new ConnectTimings(dns, tcp, tls, time.GetElapsedTime(started, raw._headersReadAt));
            raw.Timings = timings;
            if (raw.Response.StatusCode != 101)
            {
                await raw.DisposeAsync().ConfigureAwait(false);
                return (null, new ConnectFailureReport(stage, raw.Response.Explain(), raw.Response), timings);
            }

#pragma warning disable CA5350 // RFC 6455 fixes SHA-1 for Sec-WebSocket-Accept; it is a handshake check, not security.
            var expected = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));
#pragma warning restore CA5350
            if (raw.Response.Header("Sec-WebSocket-Accept") != expected)
            {
                await raw.DisposeAsync().ConfigureAwait(false);
                return (null, new ConnectFailureReport(stage, "the server answered 101 but with a wrong Sec-WebSocket-Accept: it is not a conforming WebSocket server", raw.Response), timings);
            }

            socket = null; // owned by raw now
            return (raw, null, timings);
        }
        catch (Exception e) when (e is SocketException or IOException or AuthenticationException or OperationCanceledException or InvalidDataException)
        {
            var partial = new ConnectTimings(dns, tcp, tls, TimeSpan.Zero);
            return (null, new ConnectFailureReport(stage, Describe(e, stage, uri, timeout.IsCancellationRequested, options.Timeout)), partial);
        }
        finally
        {
            socket?.Dispose();
        }
    }

    public Task SendPingAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) => SendFrameAsync(RawFrame.Ping, payload, cancellationToken);

    public Task SendPongAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) => SendFrameAsync(RawFrame.Pong, payload, cancellationToken);

    public Task SendCloseAsync(int code, CancellationToken cancellationToken)
    {
        var payload = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)code);
        return SendFrameAsync(RawFrame.Close, payload, cancellationToken);
    }

    /// <summary>Reads the next frame. Throws <see cref="EndOfStreamException"/> on FIN and an IOException/SocketException on RST.</summary>
    public async Task<RawFrame> ReadFrameAsync(CancellationToken cancellationToken)
    {
        var header = await ReadExactlyAsync(2, cancellationToken).ConfigureAwait(false);
        var fin = (header[0] & 0x80) != 0;
        var opcode = (byte)(header[0] & 0x0F);
        var masked = (header[1] & 0x80) != 0;
        long length = header[1] & 0x7F;
        if (length == 126)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(await ReadExactlyAsync(2, cancellationToken).ConfigureAwait(false));
        }
        else if (length == 127)
        {
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(await ReadExactlyAsync(8, cancellationToken).ConfigureAwait(false));
        }

        if (length > MaxPayload)
        {
            throw new InvalidDataException($"a frame of {length} bytes is larger than the diagnostics accept ({MaxPayload})");
        }

        var mask = masked ? await ReadExactlyAsync(4, cancellationToken).ConfigureAwait(false) : null;
        var payload = await ReadExactlyAsync((int)length, cancellationToken).ConfigureAwait(false);
        if (mask is not null)
        {
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= mask[i % 4];
            }
        }

        return new RawFrame(opcode, fin, payload);
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
        _writeLock.Dispose();
    }

    internal static string Describe(Exception e, string stage, Uri uri, bool timedOut, TimeSpan timeout)
    {
        if (timedOut)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"no answer within {timeout.TotalSeconds:0.#} s during the {stage} step (a firewall dropping packets, or an unreachable host)");
        }

        var socketError = e as SocketException ?? e.InnerException as SocketException;
        return (stage, socketError?.SocketErrorCode) switch
        {
            ("dns", _) => $"the host name {uri.Host} does not resolve ({e.Message})",
            ("tcp", SocketError.ConnectionRefused) => $"connection refused: nothing listens on {uri.Host}:{uri.Port}",
            ("tcp", SocketError.NetworkUnreachable or SocketError.HostUnreachable) => $"{uri.Host} is unreachable from here ({socketError!.SocketErrorCode})",
            ("tls", _) => $"the TLS handshake failed: {e.Message}",
            ("upgrade", SocketError.ConnectionReset) => "the server reset the connection during the upgrade",
            ("upgrade", _) when e is EndOfStreamException => "the server closed the connection without answering the upgrade (not an HTTP server, or it rejected the request)",
            _ => $"{stage} failed: {e.Message}",
        };
    }

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

    private async Task<UpgradeResponse> ReadResponseAsync(TimeProvider time, CancellationToken cancellationToken)
    {
        // Read until the blank line that ends the headers; whatever follows belongs to the frames (or the body).
        while (true)
        {
            var end = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                _headersReadAt = time.GetTimestamp();
                var head = Encoding.ASCII.GetString(_buffer, _start, end);
                _start += end + 4;
                return await ParseResponseAsync(head, cancellationToken).ConfigureAwait(false);
            }

            if (_end == _buffer.Length)
            {
                throw new InvalidDataException("the upgrade response headers are larger than 64 KiB");
            }

            await FillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<UpgradeResponse> ParseResponseAsync(string head, CancellationToken cancellationToken)
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
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                wait.CancelAfter(TimeSpan.FromMilliseconds(500));
                if (_end == _start)
                {
                    await FillAsync(wait.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or EndOfStreamException)
            {
                // No body, or it is not coming: fine.
            }

            body = Encoding.UTF8.GetString(_buffer, _start, Math.Min(_end - _start, 300));
        }

        return new UpgradeResponse(code, status.Length > 2 ? status[2] : string.Empty, headers, body);
    }

    private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var result = new byte[count];
        var copied = 0;
        while (copied < count)
        {
            if (_start == _end)
            {
                await FillAsync(cancellationToken).ConfigureAwait(false);
            }

            var take = Math.Min(count - copied, _end - _start);
            Buffer.BlockCopy(_buffer, _start, result, copied, take);
            _start += take;
            copied += take;
        }

        return result;
    }

    private async Task FillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        var read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            throw new EndOfStreamException("the peer closed the TCP connection");
        }

        _end += read;
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
