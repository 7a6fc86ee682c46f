using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lifeline.Diagnostics.Tests.Infrastructure;

/// <summary>
/// A tiny WebSocket server on real Kestrel at 127.0.0.1. Paths: /ws (accept, read until the client closes; how each
/// ended is in <see cref="WsEnds"/>),
/// /close/{code}?reason=... (accept, then close with that code), /idle-close/{ms} (accept, close with 1001 "idle"
/// after that many milliseconds, whatever comes meanwhile), /slow-close/{ms} (answers the client's Close ms late), /capped/{n}/{ms} (see there), anything else 404.
/// </summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private Func<int> _wsAccepted = () => 0;

    private TestServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public Uri Uri(string path) => new($"ws://127.0.0.1:{Port}{path}");

    public static async Task<TestServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.UseWebSockets();
        var wsAccepted = 0;
        var wsEnds = new ConcurrentQueue<WebSocketCloseStatus?>();
        app.Map("/ws", async context =>
        {
            using var socket = await AcceptAsync(context);
            Interlocked.Increment(ref wsAccepted);
            var buffer = new byte[1024];
            try
            {
                while ((await socket.ReceiveAsync(buffer, context.RequestAborted)).MessageType != WebSocketMessageType.Close)
                {
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
                wsEnds.Enqueue(null); // no Close frame: what a server records as 1006
                return;
            }

            wsEnds.Enqueue(socket.CloseStatus);
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        });
        app.Map("/slow-close/{ms:int}", async (HttpContext context, int ms) =>
        {
            // Reads until the client's Close, then answers it only ms later (a busy server).
            using var socket = await AcceptAsync(context);
            while ((await socket.ReceiveAsync(new byte[1024], CancellationToken.None)).MessageType != WebSocketMessageType.Close)
            {
            }

            try
            {
                await Task.Delay(ms, context.RequestAborted); // the client gave up waiting: nothing left to answer
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "answer", CancellationToken.None);
            }
            catch (OperationCanceledException)
            {
            }
        });
        app.Map("/push/{ms:int}", async (HttpContext context, int ms) =>
        {
            // Sends a small message every ms (a streaming endpoint) until the connection ends; answers pings meanwhile.
            using var socket = await AcceptAsync(context);
            var receiving = socket.ReceiveAsync(new byte[1024], context.RequestAborted);
            try
            {
                for (var i = 0; i < 10_000 && !receiving.IsCompleted; i++)
                {
                    await socket.SendAsync("tick"u8.ToArray(), WebSocketMessageType.Text, true, context.RequestAborted);
                    await Task.WhenAny(receiving, Task.Delay(ms, context.RequestAborted));
                }

                if (receiving.IsCompletedSuccessfully && receiving.Result.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
                // The client went.
            }
        });
        app.Map("/close/{code:int}", async (HttpContext context, int code) =>
        {
            using var socket = await AcceptAsync(context);
            await socket.CloseOutputAsync((WebSocketCloseStatus)code, context.Request.Query["reason"].ToString(), CancellationToken.None);
        });
        app.Map("/idle-close/{ms:int}", async (HttpContext context, int ms) =>
        {
            using var socket = await AcceptAsync(context);
            var receiving = socket.ReceiveAsync(new byte[1024], context.RequestAborted); // answers pings meanwhile
            await Task.WhenAny(receiving, Task.Delay(ms));
            var code = int.TryParse(context.Request.Query["code"], out var asked) ? (WebSocketCloseStatus)asked : WebSocketCloseStatus.EndpointUnavailable;
            await socket.CloseOutputAsync(code, "idle", CancellationToken.None);
        });
        var arrivals = 0;
        var open = 0;
        app.Map("/capped/{n:int}/{ms:int}", async (HttpContext context, int n, int ms) =>
        {
            // Holds at most n connections (one more is closed with 1013 at once) and ends each held one ms after its
            // upgrade; the second upgrade request is answered only after 4 s, so a later one can take its place meanwhile.
            if (Interlocked.Increment(ref arrivals) == 2)
            {
                await Task.Delay(4_000);
            }

            using var socket = await AcceptAsync(context);
            try
            {
                if (Interlocked.Increment(ref open) > n)
                {
                    await socket.CloseOutputAsync((WebSocketCloseStatus)1013, "full", CancellationToken.None);
                    return;
                }

                var receiving = socket.ReceiveAsync(new byte[1024], context.RequestAborted); // answers pings meanwhile
                await Task.WhenAny(receiving, Task.Delay(ms));
                await socket.CloseOutputAsync(WebSocketCloseStatus.EndpointUnavailable, "lifetime", CancellationToken.None);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
                // The client went first.
            }
            finally
            {
                Interlocked.Decrement(ref open);
            }
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new TestServer(app, new Uri(address).Port) { _wsAccepted = () => Volatile.Read(ref wsAccepted), WsEnds = wsEnds };
    }

    /// <summary>How many connections /ws accepted.</summary>
    public int WsAccepted => _wsAccepted();

    /// <summary>How each /ws connection ended: the client's close code, or null when it ended without a Close frame.</summary>
    public ConcurrentQueue<WebSocketCloseStatus?> WsEnds { get; private init; } = new();

    /// <summary>
    /// A port on 127.0.0.1 where nothing listens: 1 (tcpmux, not served anywhere). A port bound and released would come
    /// from the ephemeral range, where a server or an outgoing connection of a test alongside could take it meanwhile.
    /// </summary>
    public static int ClosedPort() => 1;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static async Task<WebSocket> AcceptAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = 400;
            throw new InvalidOperationException("not a WebSocket request: " + context.Request.Path.ToString());
        }

        var offered = context.WebSockets.WebSocketRequestedProtocols;
        return await context.WebSockets.AcceptWebSocketAsync(offered.Count > 0 ? offered[0] : null);
    }
}
