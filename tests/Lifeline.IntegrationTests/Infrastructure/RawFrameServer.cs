using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>
/// A hand-written WebSocket server on 127.0.0.1 that completes the upgrade and then writes the exact bytes a test
/// gives it, so a test can send frames that no well-behaved server library would (bad RSV bits, invalid UTF-8).
/// It then reads until the peer closes, recording what arrived.
/// </summary>
internal sealed class RawFrameServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly byte[] _frames;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _written = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _clientSpoke = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RawFrameServer(byte[] frames, bool held = false)
    {
        _frames = frames;
        if (!held)
        {
            _release.SetResult();
        }

        _listener.Start();
        _loop = Task.Run(AcceptLoopAsync);
    }

    public Uri Uri => new($"ws://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/raw");

    /// <summary>Everything the client sent after the upgrade, per connection.</summary>
    public List<byte[]> Received { get; } = [];

    public static RawFrameServer Start(params byte[][] frames) => new([.. frames.SelectMany(f => f)]);

    /// <summary>Like <see cref="Start"/>, but the frames are written only once <see cref="Release"/> is called.</summary>
    public static RawFrameServer StartHeld(params byte[][] frames) => new([.. frames.SelectMany(f => f)], held: true);

    /// <summary>Lets a held server write its frames.</summary>
    public void Release() => _release.TrySetResult();

    /// <summary>Completes once the frames were written to the first connection (handed to the kernel).</summary>
    public Task Written => _written.Task;

    /// <summary>Completes once a client sent something after the upgrade: it read the 101, and the WebSocket is open on its side.</summary>
    public Task ClientSpoke => _clientSpoke.Task;

    /// <summary>An unmasked server frame: FIN set, the given RSV bits and opcode, a short payload.</summary>
    public static byte[] Frame(byte opcode, byte[] payload, byte rsv = 0)
    {
        if (payload.Length > 125)
        {
            throw new ArgumentException("short payloads only", nameof(payload));
        }

        return [(byte)(0x80 | (rsv << 4) | opcode), (byte)payload.Length, .. payload];
    }

    /// <summary>An unmasked server frame of any length, with or without FIN.</summary>
    public static byte[] LongFrame(byte opcode, byte[] payload, bool fin = true)
    {
        var first = (byte)((fin ? 0x80 : 0) | opcode);
        byte[] header = payload.Length switch
        {
            < 126 => [first, (byte)payload.Length],
            <= ushort.MaxValue => [first, 126, (byte)(payload.Length >> 8), (byte)payload.Length],
            _ => [first, 127, 0, 0, 0, 0, (byte)(payload.Length >> 24), (byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length],
        };
        return [.. header, .. payload];
    }

    /// <summary>Waits until the first connection ended, then returns the frames the client sent on it, unmasked.</summary>
    public async Task<List<(byte Opcode, byte[] Payload)>> FirstConnectionFramesAsync(TimeSpan bound)
    {
        await Wait.UntilAsync(() => { lock (Received) { return Received.Count > 0; } }, bound, "the client's side of the connection to end");
        lock (Received)
        {
            return ClientFrames(Received[0]);
        }
    }

    /// <summary>Splits bytes a client sent into frames (opcode and unmasked payload).</summary>
    public static List<(byte Opcode, byte[] Payload)> ClientFrames(byte[] bytes)
    {
        var frames = new List<(byte, byte[])>();
        var i = 0;
        while (i + 2 <= bytes.Length)
        {
            var opcode = (byte)(bytes[i] & 0x0F);
            long length = bytes[i + 1] & 0x7F;
            i += 2;
            if (length == 126)
            {
                length = (bytes[i] << 8) | bytes[i + 1];
                i += 2;
            }
            else if (length == 127)
            {
                length = 0;
                for (var k = 0; k < 8; k++)
                {
                    length = (length << 8) | bytes[i + k];
                }

                i += 8;
            }

            var mask = bytes.AsSpan(i, 4).ToArray();
            i += 4;
            var payload = new byte[length];
            for (var k = 0; k < length; k++)
            {
                payload[k] = (byte)(bytes[i + k] ^ mask[k % 4]);
            }

            i += (int)length;
            frames.Add((opcode, payload));
        }

        return frames;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _loop;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var stream = client.GetStream();
            var request = await ReadHeadersAsync(stream);
            var key = request.Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))["Sec-WebSocket-Key:".Length..].Trim();
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
            var response = $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(response), _stop.Token);
            await _release.Task.WaitAsync(_stop.Token);
            await stream.WriteAsync(_frames, _stop.Token);
            _written.TrySetResult();

            using var received = new MemoryStream();
            var buffer = new byte[4096];
            try
            {
                using var bound = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                bound.CancelAfter(TimeSpan.FromSeconds(20));
                int read;
                while ((read = await stream.ReadAsync(buffer, bound.Token)) > 0)
                {
                    received.Write(buffer, 0, read);
                    _clientSpoke.TrySetResult();
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
            }

            lock (Received)
            {
                Received.Add(received.ToArray());
            }
        }
    }

    private async Task<string> ReadHeadersAsync(NetworkStream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (bytes.Count < 8192)
        {
            if (await stream.ReadAsync(one, _stop.Token) == 0)
            {
                break;
            }

            bytes.Add(one[0]);
            if (bytes.Count >= 4 && bytes[^4] == '\r' && bytes[^3] == '\n' && bytes[^2] == '\r' && bytes[^1] == '\n')
            {
                break;
            }
        }

        return Encoding.ASCII.GetString([.. bytes]);
    }
}
