using System.Net;
using System.Net.WebSockets;
using BenchmarkDotNet.Attributes;
using Lifeline.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.Benchmarks;

/// <summary>
/// Load scenario on loopback: 1,000 echoed messages of 64 bytes, sent and received one after another, through the
/// Lifeline client and through a bare ClientWebSocket (the baseline) against the same Kestrel echo server.
/// The difference is what Lifeline's queue, receive loop and channel cost per message.
/// </summary>
[MemoryDiagnoser]
public class EchoBenchmarks
{
    private const int Messages = 1_000;
    private readonly byte[] _payload = new byte[64];
    private readonly byte[] _receiveBuffer = new byte[4096];
    private WebApplication _server = null!;
    private ClientWebSocket _raw = null!;
    private LifelineClient _lifeline = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _server = builder.Build();
        _server.UseWebSockets();
        _server.Map("/echo", async context =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[4096];
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    return;
                }

                await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, CancellationToken.None);
            }
        });
        await _server.StartAsync();
        var uri = new Uri(_server.Urls.First().Replace("http", "ws", StringComparison.Ordinal) + "/echo");

        _raw = new ClientWebSocket();
        await _raw.ConnectAsync(uri, CancellationToken.None);
        _lifeline = new LifelineClient(new LifelineClientOptions { Uri = uri });
        await _lifeline.StartAsync();
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _raw.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        _raw.Dispose();
        await _lifeline.DisposeAsync();
        await _server.StopAsync();
        await _server.DisposeAsync();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Messages)]
    public async Task RawClientWebSocket()
    {
        for (var i = 0; i < Messages; i++)
        {
            await _raw.SendAsync(_payload, WebSocketMessageType.Binary, true, CancellationToken.None);
            ValueWebSocketReceiveResult result;
            do
            {
                result = await _raw.ReceiveAsync(_receiveBuffer.AsMemory(), CancellationToken.None);
            }
            while (!result.EndOfMessage);
        }
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public async Task LifelineClientEcho()
    {
        for (var i = 0; i < Messages; i++)
        {
            await _lifeline.SendAsync(_payload);
            _ = await _lifeline.Messages.ReadAsync();
        }
    }
}
