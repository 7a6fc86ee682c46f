using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Lifeline.FaultProxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>
/// A plain ASP.NET Core WebSocket server on real Kestrel at 127.0.0.1, with handles to misbehave on purpose:
/// abort every socket, close them with a chosen code, stop and start again on the same port.
/// Paths: /echo (echo and record), /close/{code}?reason=... (accept then close), /reject/{status} (no upgrade),
/// /big/{size} (send one message of that size), /silent (accept, never send, record),
/// /headers (accept with the first offered subprotocol, send the request headers as one JSON text message, drain),
/// /lifetime/{ms} (abort each connection that long after its upgrade, whatever its traffic), /lifetime/{ms}/close/{code}
/// (the same with a Close frame of that code).
/// </summary>
internal sealed class TestWebSocketServer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<int, WebSocket> _sockets = new();
    private WebApplication? _app;
    private int _nextId;
    private int _welcomes;
    private int _endedWithoutClose;
    private int _closeFrames;

    private TestWebSocketServer()
    {
    }

    public int Port { get; private set; }

    /// <summary>Every text message received on /echo and /silent, across restarts, in arrival order.</summary>
    public ConcurrentQueue<string> Received { get; } = new();

    /// <summary>Close frames received on /echo, /silent and /count: the code (null for none) and the reason.</summary>
    public ConcurrentQueue<(WebSocketCloseStatus? Status, string? Reason)> ClosesReceived { get; } = new();

    /// <summary>Connections on /echo, /silent and /count that ended without a Close frame from the client.</summary>
    public int EndedWithoutClose => Volatile.Read(ref _endedWithoutClose);

    /// <summary>The length of every whole message received on /count, in order.</summary>
    public ConcurrentQueue<int> ReceivedLengths { get; } = new();

    /// <summary>How many upgrades were accepted, across restarts.</summary>
    public int AcceptedCount => Volatile.Read(ref _nextId);

    public int OpenCount => _sockets.Count;

    /// <summary>How many Close frames arrived on /echo and /silent, across restarts.</summary>
    public int CloseFramesReceived => Volatile.Read(ref _closeFrames);

    public Uri Uri(string path) => new($"ws://127.0.0.1:{Port}{path}");

    /// <summary>Starts on <paramref name="port"/>, or by default on a port below the ephemeral range: tests restart the
    /// server on its port, or use the port once the server stopped, and no outgoing connection can be given it meanwhile.</summary>
    public static async Task<TestWebSocketServer> StartAsync(int port = 0)
    {
        var server = new TestWebSocketServer();
        await server.StartHostAsync(port == 0 ? LoopbackPorts.ForRestartableServer() : port);
        return server;
    }

    /// <summary>
    /// Starts the host again on the same port (after <see cref="StopAsync"/>). While it was down another listener on this
    /// machine may have taken the port for a moment (another test process probing for a free port, or a server given an
    /// explicit port), so a refused bind is tried again for a while.
    /// </summary>
    public async Task RestartAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                await StartHostAsync(Port);
                return;
            }
            catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Aborts every connection; waits first for one to be registered (a client may see the upgrade before the handler ran).</summary>
    public void AbortAll()
    {
        WaitForAConnection();
        AbortSockets();
    }

    public async Task CloseAllAsync(int code, string? reason)
    {
        WaitForAConnection();
        await Task.WhenAll(_sockets.Values.Select(async socket =>
        {
            try
            {
                await socket.CloseOutputAsync((WebSocketCloseStatus)code, reason, CancellationToken.None);
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }));
    }

    public async Task SendToAllAsync(string text)
    {
        WaitForAConnection();
        foreach (var socket in _sockets.Values)
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        }
    }

    public async Task StopAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            AbortSockets();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await app.StopAsync(timeout.Token);
            await app.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    // The client's ConnectAsync can return before the server's handler has registered the socket; on a loaded machine
    // an abort or close sent in that gap would reach no one. Bounded, and only ever called with a client connected.
    private void WaitForAConnection() => SpinWait.SpinUntil(() => !_sockets.IsEmpty, TimeSpan.FromSeconds(10));

    private void AbortSockets()
    {
        foreach (var socket in _sockets.Values)
        {
            socket.Abort();
        }
    }

    /// <summary>A Welcome for a new session with a random id, as a lifeline.v1 server answers a Hello.</summary>
    private static Task SendWelcomeAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var id = new byte[16];
        System.Security.Cryptography.RandomNumberGenerator.Fill(id);
        return SendSessionFrameAsync(socket, w => Lifeline.Session.Wire.SessionFrameWriter.WriteWelcome(w, new Lifeline.Session.Wire.WelcomeFrame(
            1, Lifeline.Session.SessionId.FromBytes(id), Lifeline.Session.ResumeToken.Create(), TimeSpan.FromMinutes(2), 1 << 20, 10_000, 1 << 24)), cancellationToken);
    }

    private static async Task SendSessionFrameAsync(WebSocket socket, Action<System.Buffers.IBufferWriter<byte>> write, CancellationToken cancellationToken)
    {
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        write(writer);
        await socket.SendAsync(writer.WrittenMemory, WebSocketMessageType.Binary, true, cancellationToken);
    }

    /// <summary>Reads until the client's Close frame and records it in <see cref="ClosesReceived"/>.</summary>
    private async Task RecordCloseAsync(WebSocket socket, byte[] buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cancellationToken);
            if (result.CloseStatus is { } status)
            {
                ClosesReceived.Enqueue((status, result.CloseStatusDescription));
                return;
            }
        }
    }

    private async Task StartHostAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.UseWebSockets();
        app.Map("/echo", context => AcceptAsync(context, echo: true));
        app.Map("/silent", context => AcceptAsync(context, echo: false));
        app.Map("/count", CountAsync);
        app.Map("/burst/{count:int}", async context =>
        {
            // Sends numbered messages "1".."count" as fast as the socket takes them, then waits for the close.
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var count = int.Parse((string)context.Request.RouteValues["count"]!, CultureInfo.InvariantCulture);
            try
            {
                for (var i = 1; i <= count; i++)
                {
                    await socket.SendAsync(Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture)), WebSocketMessageType.Text, true, context.RequestAborted);
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
                return;
            }

            await DrainAsync(socket, context.RequestAborted);
        });
        app.Map("/welcome-always", async context =>
        {
            // A lifeline.v1 server that keeps no sessions and does not say so: every Hello, a resume too, is answered
            // with a Welcome for a new session. The first connection dies (no Close frame) after one Data frame.
            using var socket = await context.WebSockets.AcceptWebSocketAsync(Lifeline.Session.Wire.SessionProtocol.SubProtocol);
            var first = Interlocked.Increment(ref _welcomes) == 1;
            var buffer = new byte[64 * 1024];
            try
            {
                await socket.ReceiveAsync(buffer, context.RequestAborted); // the Hello
                await SendWelcomeAsync(socket, context.RequestAborted);
                while (!(await socket.ReceiveAsync(buffer, context.RequestAborted)).CloseStatus.HasValue)
                {
                    if (first)
                    {
                        socket.Abort();
                        return;
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
            }
        });
        app.Map("/lost/{reason:int}/{last:int}", async context =>
        {
            // A lifeline.v1 server that welcomes a new session, reads three Data frames without acknowledging them, and
            // then ends the session with the SessionLost the route names.
            using var socket = await context.WebSockets.AcceptWebSocketAsync(Lifeline.Session.Wire.SessionProtocol.SubProtocol);
            var reason = (Lifeline.Session.Wire.SessionLostReason)int.Parse((string)context.Request.RouteValues["reason"]!, CultureInfo.InvariantCulture);
            var last = long.Parse((string)context.Request.RouteValues["last"]!, CultureInfo.InvariantCulture);
            var buffer = new byte[64 * 1024];
            try
            {
                await socket.ReceiveAsync(buffer, context.RequestAborted); // the Hello
                await SendWelcomeAsync(socket, context.RequestAborted);
                for (var i = 0; i < 3; i++)
                {
                    if ((await socket.ReceiveAsync(buffer, context.RequestAborted)).CloseStatus.HasValue)
                    {
                        return;
                    }
                }

                await SendSessionFrameAsync(socket, w => Lifeline.Session.Wire.SessionFrameWriter.WriteSessionLost(w,
                    new Lifeline.Session.Wire.SessionLostFrame(reason, last, Lifeline.Session.SequenceRange.Empty)), context.RequestAborted);
                await RecordCloseAsync(socket, buffer, context.RequestAborted);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
            }
        });
        app.Map("/data-before-welcome", async context =>
        {
            // A lifeline.v1 server that answers the Hello with a Data frame before its Welcome (protocol.md 5.9: 1002).
            using var socket = await context.WebSockets.AcceptWebSocketAsync(Lifeline.Session.Wire.SessionProtocol.SubProtocol);
            var buffer = new byte[64 * 1024];
            try
            {
                await socket.ReceiveAsync(buffer, context.RequestAborted); // the Hello
                await SendSessionFrameAsync(socket, w => Lifeline.Session.Wire.SessionFrameWriter.WriteData(w, 1, 0, isText: true, "early"u8), context.RequestAborted);
                await RecordCloseAsync(socket, buffer, context.RequestAborted);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
            }
        });
        app.Map("/flap", async context =>
        {
            // A link that works for a moment: one message, then the connection dies without a Close frame.
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            Interlocked.Increment(ref _nextId);
            await socket.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, true, context.RequestAborted);
            await Task.Delay(200, context.RequestAborted);
            socket.Abort();
        });
        app.Map("/lifetime/{ms:int}", async context =>
        {
            // Ends every connection that long after the upgrade, whatever passes meanwhile (a maximum lifetime); the
            // pending read answers pings until then.
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var lifetime = int.Parse((string)context.Request.RouteValues["ms"]!, CultureInfo.InvariantCulture);
            var draining = DrainAsync(socket, context.RequestAborted);
            await Task.WhenAny(draining, Task.Delay(lifetime, context.RequestAborted));
            socket.Abort();
            await draining;
        });
        app.Map("/lifetime/{ms:int}/close/{code:int}", async context =>
        {
            // As /lifetime, but ends each connection with a Close frame of that code (a server that checks a credential
            // again after a while, say).
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var lifetime = int.Parse((string)context.Request.RouteValues["ms"]!, CultureInfo.InvariantCulture);
            var code = int.Parse((string)context.Request.RouteValues["code"]!, CultureInfo.InvariantCulture);
            var draining = DrainAsync(socket, context.RequestAborted);
            await Task.WhenAny(draining, Task.Delay(lifetime, context.RequestAborted));
            if (!draining.IsCompleted)
            {
                try
                {
                    await socket.CloseOutputAsync((WebSocketCloseStatus)code, "expired", context.RequestAborted);
                }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
                {
                    // The client went first.
                }
            }

            await draining;
        });
        app.Map("/close/{code:int}", async context =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var code = int.Parse((string)context.Request.RouteValues["code"]!, CultureInfo.InvariantCulture);
            await socket.CloseOutputAsync((WebSocketCloseStatus)code, context.Request.Query["reason"], context.RequestAborted);
            await DrainAsync(socket, context.RequestAborted);
        });
        app.Map("/headers", async context =>
        {
            var offered = context.WebSockets.WebSocketRequestedProtocols;
            using var socket = await context.WebSockets.AcceptWebSocketAsync(offered.Count > 0 ? offered[0] : null);
            var headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
            await socket.SendAsync(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(headers), WebSocketMessageType.Text, true, context.RequestAborted);
            await DrainAsync(socket, context.RequestAborted);
        });
        app.Map("/reject/{status:int}", context =>
        {
            context.Response.StatusCode = int.Parse((string)context.Request.RouteValues["status"]!, CultureInfo.InvariantCulture);
            if (context.Request.Query.TryGetValue("retryAfter", out var retryAfter))
            {
                context.Response.Headers.RetryAfter = retryAfter;
            }

            return Task.CompletedTask;
        });
        app.Map("/big/{size:int}", async context =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var size = int.Parse((string)context.Request.RouteValues["size"]!, CultureInfo.InvariantCulture);
            await socket.SendAsync(new byte[size], WebSocketMessageType.Binary, true, context.RequestAborted);
            await DrainAsync(socket, context.RequestAborted);
        });
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        Port = new Uri(app.Urls.First()).Port;
        _app = app;
    }

    private async Task AcceptAsync(HttpContext context, bool echo)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = 400;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var id = Interlocked.Increment(ref _nextId);
        _sockets[id] = socket;
        try
        {
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, context.RequestAborted);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ClosesReceived.Enqueue((result.CloseStatus, result.CloseStatusDescription));
                    Interlocked.Increment(ref _closeFrames);
                    if (socket.State == WebSocketState.CloseReceived)
                    {
                        await socket.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    }

                    return;
                }

                // Test messages are small: one frame each.
                var text = Encoding.UTF8.GetString(buffer, 0, result.Count);
                Received.Enqueue(text);
                if (echo)
                {
                    await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, context.RequestAborted);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            Interlocked.Increment(ref _endedWithoutClose);
        }
        finally
        {
            _sockets.TryRemove(id, out _);
        }
    }

    private async Task CountAsync(HttpContext context)
    {
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var buffer = new byte[64 * 1024];
        var length = 0;
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, context.RequestAborted);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ClosesReceived.Enqueue((result.CloseStatus, result.CloseStatusDescription));
                    await socket.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    return;
                }

                length += result.Count;
                if (result.EndOfMessage)
                {
                    ReceivedLengths.Enqueue(length);
                    length = 0;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            Interlocked.Increment(ref _endedWithoutClose);
        }
    }

    private static async Task DrainAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[1024];
        try
        {
            while (socket.State is WebSocketState.Open or WebSocketState.CloseSent)
            {
                var result = await socket.ReceiveAsync(buffer, cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
        }
    }
}

