using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Lifeline.Benchmarks;

/// <summary>
/// A WebSocket server on 127.0.0.1 that does the least work possible so that the client is the bottleneck. In
/// "blast" mode it writes <c>count</c> pre-built frames (built once, before the clock runs) after the upgrade; in
/// "sink" mode it reads and discards what the client sends. It speaks just enough RFC 6455 for that: the upgrade,
/// unmasked server frames, and a Close frame at the end of a blast.
/// </summary>
internal sealed class FramedServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private byte[] _blast = [];

    public FramedServer()
    {
        _listener.Start();
        _ = Task.Run(AcceptLoopAsync);
    }

    public Uri BlastUri => new($"ws://127.0.0.1:{Port}/blast");

    public Uri SinkUri => new($"ws://127.0.0.1:{Port}/sink");

    private int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Builds the bytes every later /blast connection receives: <paramref name="count"/> binary messages of <paramref name="size"/> bytes.</summary>
    public void PrepareBlast(int count, int size)
    {
        var header = size < 126 ? new byte[] { 0x82, (byte)size }
            : size <= ushort.MaxValue ? [0x82, 126, (byte)(size >> 8), (byte)size]
            : throw new ArgumentOutOfRangeException(nameof(size));
        using var frames = new MemoryStream();
        var payload = new byte[size];
        for (var i = 0; i < count; i++)
        {
            frames.Write(header);
            frames.Write(payload);
        }

        _blast = frames.ToArray();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        client.NoDelay = true;
        var stream = client.GetStream();
        try
        {
            var request = await ReadRequestAsync(stream);
            var key = request.Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))["Sec-WebSocket-Key:".Length..].Trim();
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
            var protocol = request.Contains("lifeline.v1", StringComparison.Ordinal) ? "Sec-WebSocket-Protocol: lifeline.v1\r\n" : "";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{protocol}Sec-WebSocket-Accept: {accept}\r\n\r\n"), _stop.Token);
            var buffer = new byte[64 * 1024];
            if (request.StartsWith("GET /blast", StringComparison.Ordinal))
            {
                await stream.WriteAsync(_blast, _stop.Token);

                // After a blast the client sends nothing but its Close frame: answer it, so a client that waits
                // for the closing handshake is not measured waiting for a timeout.
                if (await stream.ReadAsync(buffer, _stop.Token) > 0 && (buffer[0] & 0x0F) == 0x8)
                {
                    await stream.WriteAsync(new byte[] { 0x88, 0x02, 0x03, 0xE8 }, _stop.Token);
                }

                return;
            }

            while (await stream.ReadAsync(buffer, _stop.Token) > 0)
            {
                // sink: discard
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or InvalidOperationException)
        {
        }
    }

    private async Task<string> ReadRequestAsync(NetworkStream stream)
    {
        var bytes = new List<byte>(1024);
        var one = new byte[1];
        while (bytes.Count < 16 * 1024 && await stream.ReadAsync(one, _stop.Token) == 1)
        {
            bytes.Add(one[0]);
            if (bytes.Count >= 4 && bytes[^1] == '\n' && bytes[^2] == '\r' && bytes[^3] == '\n' && bytes[^4] == '\r')
            {
                break;
            }
        }

        return Encoding.ASCII.GetString([.. bytes]);
    }
}
