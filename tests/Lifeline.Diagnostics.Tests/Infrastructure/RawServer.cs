using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Lifeline.Diagnostics.Tests.Infrastructure;

/// <summary>
/// A hand-written WebSocket server on 127.0.0.1 for one connection: it answers the upgrade correctly, then writes the
/// bytes it was given (frames a real server would never send) and keeps what the client sends back.
/// </summary>
internal sealed class RawServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    private RawServer(byte[] afterUpgrade, string extraHeaders)
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        Received = Task.Run(() => ServeAsync(afterUpgrade, extraHeaders));
    }

    public int Port { get; }

    /// <summary>Everything the client sent after the upgrade, once it closed or 10 s passed.</summary>
    public Task<byte[]> Received { get; }

    public Uri Uri => new($"ws://127.0.0.1:{Port}/");

    /// <param name="afterUpgrade">The bytes written after the 101.</param>
    /// <param name="extraHeaders">Header lines added to the 101, each ending with CRLF.</param>
    public static RawServer Start(byte[] afterUpgrade, string extraHeaders = "") => new(afterUpgrade, extraHeaders);

    public void Dispose() => _listener.Dispose();

    private async Task<byte[]> ServeAsync(byte[] afterUpgrade, string extraHeaders)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var client = await _listener.AcceptTcpClientAsync(timeout.Token);
        var stream = client.GetStream();
        var request = new List<byte>();
        var buffer = new byte[4096];
        while (!Encoding.ASCII.GetString([.. request]).Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                return [];
            }

            request.AddRange(buffer.AsSpan(0, read));
        }

        var key = Encoding.ASCII.GetString([.. request]).Split("\r\n")
            .First(line => line.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))["Sec-WebSocket-Key:".Length..].Trim();
#pragma warning disable CA5350 // RFC 6455 fixes SHA-1 for the accept key.
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
#pragma warning restore CA5350
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extraHeaders}\r\n"), timeout.Token);
        await stream.WriteAsync(afterUpgrade, timeout.Token);

        var received = new List<byte>();
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.AddRange(buffer.AsSpan(0, read));
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client reset or went quiet: keep what arrived.
        }

        return [.. received];
    }
}
