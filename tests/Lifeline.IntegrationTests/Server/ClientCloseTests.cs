using System.Net.WebSockets;
using System.Text;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lifeline.IntegrationTests.Server;

/// <summary>A client that sends and closes at once still gets the answers to what it sent before its Close.</summary>
public sealed class ClientCloseTests
{
    [Fact]
    public async Task ClientSendsThenClosesAtOnce_EchoesArriveBeforeTheServersClose()
    {
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, ct) =>
        {
            await foreach (var message in connection.Messages.ReadAllAsync())
            {
                await Task.Delay(50); // a handler that takes a moment per message
                await connection.SendAsync(message.Data, message.Type, ct);
            }
        });
        Assert.Equal(["one", "two", "three"], await SendThreeThenCloseAsync(host.Uri()));
    }

    [Fact]
    public async Task ClientSendsThenClosesAtOnce_WithTheReceiveBufferFull_TheMessageBeforeTheCloseIsStillAnswered()
    {
        // The receive loop held "three" for want of room when it saw the client's Close behind it. Before, it dropped
        // "three" (a warning in the log), and the client got a clean 1000 and no answer to it.
        await using var host = await LifelineTestHost.StartAsync(
            configure: o =>
            {
                o.ReceiveCapacity = 1;
                o.CloseReplyGrace = TimeSpan.FromSeconds(15); // what is checked is the drop, not the grace on a loaded machine
            },
            handler: async (connection, ct) =>
            {
                await foreach (var message in connection.Messages.ReadAllAsync())
                {
                    await Task.Delay(200); // slower than the client: "two" waits in the buffer, "three" behind it
                    await connection.SendAsync(message.Data, message.Type, ct);
                }
            });
        Assert.Equal(["one", "two", "three"], await SendThreeThenCloseAsync(host.Uri()));
    }

    /// <summary>Sends "one", "two" and "three", closes at once (1000), and returns what came back before the server's 1000.</summary>
    private static async Task<List<string>> SendThreeThenCloseAsync(Uri uri)
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(uri, CancellationToken.None);
        foreach (var text in new[] { "one", "two", "three" })
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        }

        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        var received = new List<string>();
        var buffer = new byte[1024];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, bound.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
                return received;
            }

            received.Add(Encoding.UTF8.GetString(buffer, 0, result.Count));
        }
    }

    [Fact]
    public async Task ClientVanishes_AHandlerPushingWithoutItsToken_GetsAThrowingSend_AndBroadcastsSkipIt()
    {
        var sendFailed = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pushing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, _) =>
        {
            // Pushes until a send fails; ignores its token (bounded: 3,000 sends of 10 ms).
            for (var i = 0; i < 3_000; i++)
            {
                try
                {
                    await connection.SendTextAsync($"push {i}");
                }
                catch (Exception e)
                {
                    sendFailed.TrySetResult(e);
                    return;
                }

                pushing.TrySetResult();
                await Task.Delay(10, CancellationToken.None);
            }
        });
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(host.Uri(), CancellationToken.None);
        await pushing.Task.WaitAsync(TimeSpan.FromSeconds(15));

        socket.Abort(); // the link ends without a Close frame

        // Before, every send after the link died still completed (the writer dropped them): the handler never ended, and
        // a broadcast counted the dead connection as reached.
        var failure = await sendFailed.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.IsType<InvalidOperationException>(failure);
        await Wait.UntilAsync(() => host.Registry.Count == 0, TimeSpan.FromSeconds(20), "the connection to leave the registry");
        Assert.Equal(0, await host.Registry.SendToAllAsync("anyone?"));
    }

    [Fact]
    public async Task ClientVanishes_AHandlerWhoseSendThenThrows_EndsNormally_NoErrorLogged()
    {
        var errors = new ErrorCounter();
        var sendFailed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var got = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(
            handler: async (connection, _) =>
            {
                // The README's echo, slow: the answer goes out after the link died, and the send throws out of the handler.
                await foreach (var message in connection.Messages.ReadAllAsync())
                {
                    got.TrySetResult();
                    await Wait.UntilAsync(() => connection.Closing.IsCancellationRequested, TimeSpan.FromSeconds(20), "the link to die");
                    try
                    {
                        await connection.SendAsync(message.Data, message.Type);
                    }
                    finally
                    {
                        sendFailed.TrySetResult();
                    }
                }
            },
            services: s => s.AddSingleton<ILoggerProvider>(errors));
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(host.Uri(), CancellationToken.None);
        await socket.SendAsync(Encoding.UTF8.GetBytes("hello"), WebSocketMessageType.Text, true, CancellationToken.None);
        await got.Task.WaitAsync(TimeSpan.FromSeconds(15));

        socket.Abort();

        // Before, the endpoint took the send's InvalidOperationException for a handler failure: an Error log ("handler
        // failed") and an attempt at 1011 on every link lost while a handler answered.
        await sendFailed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => host.Registry.Count == 0, TimeSpan.FromSeconds(20), "the connection to be released");
        Assert.Equal(0, Volatile.Read(ref errors.Errors));
    }

    private sealed class ErrorCounter : ILoggerProvider, ILogger
    {
        public int Errors;

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Error)
            {
                Interlocked.Increment(ref Errors);
            }
        }

        public void Dispose()
        {
        }
    }

    [Fact]
    public async Task ClientCloses_HandlerThatRunsUntilClosing_IsAnsweredAfterTheGrace()
    {
        await using var host = await LifelineTestHost.StartAsync(o => o.CloseReplyGrace = TimeSpan.FromMilliseconds(200), handler: async (connection, ct) =>
        {
            // Ignores Messages: streams until the connection is closing.
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(20, CancellationToken.None);
            }
        });
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(host.Uri(), CancellationToken.None);

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);

        Assert.Equal(WebSocketState.Closed, socket.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }
}
