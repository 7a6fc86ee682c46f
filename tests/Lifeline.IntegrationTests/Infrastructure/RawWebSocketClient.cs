using System.Net.Sockets;
using System.Text;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>A WebSocket client written on a bare TCP socket, for sending frames no well-behaved client would send.</summary>
internal sealed class RawWebSocketClient : IDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawWebSocketClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawWebSocketClient> ConnectAsync(int port, string path = "/ws")
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        var client = new RawWebSocketClient(tcp);
        var request = $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        await client._stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var head = new List<byte>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var one = new byte[1];
        while (head.Count < 4 || !(head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await client._stream.ReadAsync(one, timeout.Token) == 0)
            {
                throw new IOException("The server closed during the upgrade.");
            }

            head.Add(one[0]);
        }

        var status = Encoding.ASCII.GetString([.. head]);
        if (!status.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
        {
            throw new IOException("Upgrade refused: " + status);
        }

        return client;
    }

    /// <summary>Sends one masked frame.</summary>
    public async Task SendFrameAsync(int opcode, byte[] payload, bool fin = true) => await _stream.WriteAsync(Frame(opcode, payload, fin));

    /// <summary>Sends bytes as they are, in one write: several frames built with <see cref="Frame"/> arrive together.</summary>
    public async Task SendRawAsync(byte[] bytes) => await _stream.WriteAsync(bytes);

    /// <summary>
    /// One masked client frame (payload up to 65,535 bytes). <paramref name="rsv"/> sets the reserved bits (1-7), which no
    /// extension negotiated here allows.
    /// </summary>
    public static byte[] Frame(int opcode, byte[] payload, bool fin = true, int rsv = 0)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(payload.Length, ushort.MaxValue); // no 64-bit length here
        var lengthBytes = payload.Length < 126 ? 0 : 2;
        var frame = new byte[2 + lengthBytes + 4 + payload.Length];
        frame[0] = (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
        if (lengthBytes == 0)
        {
            frame[1] = (byte)(0x80 | payload.Length);
        }
        else
        {
            frame[1] = 0x80 | 126;
            frame[2] = (byte)(payload.Length >> 8);
            frame[3] = (byte)payload.Length;
        }

        var maskAt = 2 + lengthBytes;
        byte[] mask = [1, 2, 3, 4];
        mask.CopyTo(frame, maskAt);
        for (var i = 0; i < payload.Length; i++)
        {
            frame[maskAt + 4 + i] = (byte)(payload[i] ^ mask[i % 4]);
        }

        return frame;
    }

    /// <summary>Reads the next frame from the server; null when the connection ended (FIN or reset) first.</summary>
    public async Task<(int Opcode, bool Fin, byte[] Payload)?> ReadFrameAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await ReadOneFrameAsync(cts.Token);
        }
        catch (IOException) // an end of the stream (EndOfStreamException) or a reset
        {
            return null;
        }
    }

    /// <summary>Reads frames until a Close frame; returns its code (null when it had none, or the link ended first).</summary>
    public async Task<int?> ReadCloseCodeAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var (opcode, _, payload) = await ReadOneFrameAsync(cts.Token);
                if (opcode == 8)
                {
                    return payload.Length >= 2 ? (payload[0] << 8) | payload[1] : null;
                }
            }
        }
        catch (EndOfStreamException)
        {
            return null;
        }
    }

    /// <summary>Waits until the server ends the TCP connection (FIN or reset), discarding what arrives.</summary>
    public async Task WaitForEndAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var scratch = new byte[1024];
        try
        {
            while (await _stream.ReadAsync(scratch, cts.Token) > 0)
            {
            }
        }
        catch (IOException)
        {
            // A reset ends it too.
        }
    }

    private async Task<(int Opcode, bool Fin, byte[] Payload)> ReadOneFrameAsync(CancellationToken cancellationToken)
    {
        var header = await ReadExactlyAsync(2, cancellationToken);
        long length = header[1] & 0x7F;
        if (length == 126)
        {
            var ext = await ReadExactlyAsync(2, cancellationToken);
            length = (ext[0] << 8) | ext[1];
        }
        else if (length == 127)
        {
            var ext = await ReadExactlyAsync(8, cancellationToken);
            length = 0;
            foreach (var b in ext)
            {
                length = (length << 8) | b;
            }
        }

        return (header[0] & 0x0F, (header[0] & 0x80) != 0, await ReadExactlyAsync((int)length, cancellationToken));
    }

    private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        await _stream.ReadExactlyAsync(buffer, cancellationToken);
        return buffer;
    }

    /// <summary>Drops the connection with a TCP reset instead of a FIN: the link dies as a crashed peer's does.</summary>
    public void Reset()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Dispose();
    }

    public void Dispose() => _tcp.Dispose();
}
