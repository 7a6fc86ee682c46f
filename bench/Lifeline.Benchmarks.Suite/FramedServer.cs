using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.Benchmarks;

/// <summary>
/// A WebSocket server on 127.0.0.1 that does the least work possible so that the client is the bottleneck. In
/// "blast" mode it writes pre-built frames (built once, before the clock runs) after the upgrade; in "sink" mode it
/// reads and counts what the client sends (<see cref="SinkMessages"/>). It speaks just enough RFC 6455 for that: the
/// upgrade, unmasked server frames, and the closing handshake. A client that offers <c>lifeline.v1</c> gets a session:
/// its Hello is answered with a Welcome built with the session wire types, a blast is made of pre-built session Data
/// frames numbered 1..count, and a sink acknowledges the Data frames it counted as a Lifeline server does with its
/// default ack options (once 1,024 messages or 256 KiB are unacknowledged), so the client's replay buffer never fills. Every other session frame (the client's Acks) is read and ignored.
/// </summary>
internal sealed class FramedServer : IDisposable
{
    // What a Lifeline server's SessionAckOptions default to: the sink acknowledges no more often than a real one would.
    private const int AckEveryMessages = 1024;
    private const long AckEveryBytes = 256 * 1024;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private byte[] _blast = [];
    private byte[] _sessionBlast = [];
    private long _sinkMessages;

    public FramedServer()
    {
        _listener.Start();
        _ = Task.Run(AcceptLoopAsync);
    }

    public Uri BlastUri => new($"ws://127.0.0.1:{Port}/blast");

    public Uri SinkUri => new($"ws://127.0.0.1:{Port}/sink");

    /// <summary>Whole messages (session: Data frames) read by every sink connection so far.</summary>
    public long SinkMessages => Interlocked.Read(ref _sinkMessages);

    private int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Builds the bytes every later /blast connection receives: <paramref name="count"/> binary messages of <paramref name="size"/> bytes, plain and as session Data frames.</summary>
    public void PrepareBlast(int count, int size)
    {
        var payload = new byte[size];
        using var frames = new MemoryStream();
        for (var i = 0; i < count; i++)
        {
            WriteServerFrame(frames, payload);
        }

        _blast = frames.ToArray();
        using var session = new MemoryStream();
        var writer = new ArrayBufferWriter<byte>(SessionFrameWriter.MaxDataHeaderLength + size);
        for (var i = 1; i <= count; i++)
        {
            writer.ResetWrittenCount();
            SessionFrameWriter.WriteData(writer, i, 0, isText: false, payload);
            WriteServerFrame(session, writer.WrittenSpan);
        }

        _sessionBlast = session.ToArray();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }

    private static void WriteServerFrame(Stream destination, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[10];
        header[0] = 0x82;
        int length;
        if (payload.Length < 126)
        {
            header[1] = (byte)payload.Length;
            length = 2;
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header[1] = 126;
            header[2] = (byte)(payload.Length >> 8);
            header[3] = (byte)payload.Length;
            length = 4;
        }
        else
        {
            throw new ArgumentOutOfRangeException(nameof(payload));
        }

        destination.Write(header[..length]);
        destination.Write(payload);
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
            var session = request.Contains(SessionProtocol.SubProtocol, StringComparison.Ordinal);
            var protocol = session ? $"Sec-WebSocket-Protocol: {SessionProtocol.SubProtocol}\r\n" : "";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{protocol}Sec-WebSocket-Accept: {accept}\r\n\r\n"), _stop.Token);
            var reader = new ClientFrameReader(stream);
            if (session)
            {
                // The first client message is the Hello; whatever it asks, the answer is a new session.
                await reader.ReadFrameAsync(_stop.Token);
                var welcome = new ArrayBufferWriter<byte>(128);
                SessionFrameWriter.WriteWelcome(welcome, new WelcomeFrame(
                    SessionProtocol.Version,
                    SessionId.FromBytes(RandomNumberGenerator.GetBytes(SessionId.Length)),
                    ResumeToken.Create(),
                    SessionProtocol.DefaultResumeWindow,
                    MaxFrameBytes: 1 << 20,
                    ReplayMaxMessages: 100_000,
                    ReplayMaxBytes: 64L << 20));
                using var frame = new MemoryStream();
                WriteServerFrame(frame, welcome.WrittenSpan);
                await stream.WriteAsync(frame.ToArray(), _stop.Token);
            }

            var blast = request.StartsWith("GET /blast", StringComparison.Ordinal);
            if (blast)
            {
                await stream.WriteAsync(session ? _sessionBlast : _blast, _stop.Token);
            }

            // Read until the client's Close (answered, so a client waiting for the closing handshake is not measured
            // waiting for a timeout) or the end of the stream; a sink counts, and acknowledges session Data frames.
            long acked = 0;
            long ackedBytes = 0;
            var ack = new byte[16];
            var ackWriter = new ArrayBufferWriter<byte>(12); // reused: no allocation per ack (see ReadBatchAsync)
            while (true)
            {
                var batch = await reader.ReadBatchAsync(session, _stop.Token);
                if (!blast)
                {
                    Interlocked.Add(ref _sinkMessages, batch.Messages);
                }

                if (batch.Closed)
                {
                    await stream.WriteAsync(new byte[] { 0x88, 0x02, 0x03, 0xE8 }, _stop.Token);
                    return;
                }

                if (batch.Ended)
                {
                    return;
                }

                if (session && !blast && (reader.DataFrames - acked >= AckEveryMessages || reader.DataBytes - ackedBytes >= AckEveryBytes))
                {
                    (acked, ackedBytes) = (reader.DataFrames, reader.DataBytes);
                    ackWriter.ResetWrittenCount();
                    SessionFrameWriter.WriteAck(ackWriter, acked);
                    ack[0] = 0x82;
                    ack[1] = (byte)ackWriter.WrittenCount;
                    ackWriter.WrittenSpan.CopyTo(ack.AsSpan(2));
                    await stream.WriteAsync(ack.AsMemory(0, 2 + ackWriter.WrittenCount), _stop.Token);
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or InvalidOperationException or ObjectDisposedException)
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

    /// <summary>What one read brought: whole messages finished, and whether a Close frame or the end of the stream came.</summary>
    private readonly record struct Batch(int Messages, bool Closed, bool Ended);

    /// <summary>Walks masked client frames in the bytes as they arrive, skipping payloads; looks only at a session frame's type byte.</summary>
    private sealed class ClientFrameReader(NetworkStream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;
        private long _skip;

        public long DataFrames { get; private set; }

        /// <summary>The bytes of the Data frames counted (their session headers included).</summary>
        public long DataBytes { get; private set; }

        /// <summary>Reads one whole small frame (the Hello); its content is not needed.</summary>
        public async Task ReadFrameAsync(CancellationToken cancellationToken)
        {
            var before = DataFrames;
            while (true)
            {
                var batch = await ReadBatchAsync(session: true, cancellationToken);
                if (batch.Messages > 0 || batch.Ended || batch.Closed)
                {
                    DataFrames = before;
                    return;
                }
            }
        }

        // Pooled: the sink runs in the suite's own process, where GC.GetTotalAllocatedBytes counts the clients' bytes per
        // message; a box per read that waits would be counted as theirs (and more for a client that writes more often).
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<Batch> ReadBatchAsync(bool session, CancellationToken cancellationToken)
        {
            if (_start > 0)
            {
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                _end -= _start;
                _start = 0;
            }

            var n = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (n == 0)
            {
                return new Batch(0, false, true);
            }

            _end += n;
            var messages = 0;
            while (true)
            {
                if (_skip > 0)
                {
                    var take = (int)Math.Min(_skip, _end - _start);
                    _start += take;
                    _skip -= take;
                    if (_skip > 0)
                    {
                        break;
                    }
                }

                var available = _end - _start;
                if (available < 2)
                {
                    break;
                }

                var b0 = _buffer[_start];
                var b1 = _buffer[_start + 1];
                long length = b1 & 0x7F;
                var headerLength = length == 126 ? 4 : length == 127 ? 10 : 2;
                headerLength += (b1 & 0x80) != 0 ? 4 : 0;
                if (available < headerLength + ((b1 & 0x7F) > 0 ? 1 : 0))
                {
                    break;
                }

                if (length == 126)
                {
                    length = (_buffer[_start + 2] << 8) | _buffer[_start + 3];
                }
                else if (length == 127)
                {
                    length = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(_start + 2));
                }

                var opcode = b0 & 0x0F;
                if (opcode == 0x8)
                {
                    return new Batch(messages, true, false);
                }

                var fin = (b0 & 0x80) != 0;
                if (session)
                {
                    var first = length > 0 ? (byte)(_buffer[_start + headerLength] ^ _buffer[_start + headerLength - 4]) : (byte)0;
                    if (opcode is 0x1 or 0x2 && (first & 0xFE) == (byte)SessionFrameType.Data)
                    {
                        messages++;
                        DataFrames++;
                        DataBytes += length;
                    }
                    else if (opcode is 0x1 or 0x2 && first == (byte)SessionFrameType.Hello)
                    {
                        messages++;
                    }
                }
                else if (fin && opcode is 0x0 or 0x1 or 0x2)
                {
                    messages++;
                }

                _start += headerLength;
                _skip = length;
            }

            return new Batch(messages, false, false);
        }
    }
}
