using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using Lifeline.AspNetCore;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>
/// How a session's handler waits for its next message: parked on the inbox, handed the message by the carrier that
/// wrote it (on the carrier's thread, without a thread-pool hop), and still cancellable by its own token; and which send
/// answers the message it holds.
/// </summary>
public sealed class SessionInboxReadTests
{
    [Fact]
    public async Task HandlerWaitingForAMessage_IsHandedItByTheCarrierThatWroteIt()
    {
        var handedByTheWrite = 0;
        await using var app = await StartHostAsync(async (session, ct) =>
        {
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                // Handed over inline, the handler runs inside the carrier's hand-over: no thread-pool hop in between.
                var stack = new StackTrace().ToString();
                if (stack.Contains("SessionInbox.HandOver", StringComparison.Ordinal) || stack.Contains("SessionInbox.WakeParkedReader", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref handedByTheWrite);
                }

                await session.SendAsync(message.Data, message.Type, ct);
            }
        });
        await using var client = await StartClientAsync(app);

        for (var i = 0; i < 100; i++)
        {
            await client.SendAsync(new byte[] { (byte)i }, WebSocketMessageType.Binary).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            var echo = await client.ReceiveAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1, echo.Count);
        }

        // One at a time, each message finds the handler waiting; a loaded machine may delay some answers past the next
        // message, so not every one, but with the hop back in none would be.
        Assert.True(Volatile.Read(ref handedByTheWrite) > 0, "no message was handed to the waiting handler by the carrier's write");
    }

    [Fact]
    public async Task HandlerWaitCancelledByItsToken_EndsCancelled_AndTheNextWaitGetsTheNextMessage()
    {
        var firstWait = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await StartHostAsync(async (session, ct) =>
        {
            using (var stop = new CancellationTokenSource())
            {
                var waiting = session.Messages.WaitToReadAsync(stop.Token).AsTask(); // nothing sent yet: it waits
                await stop.CancelAsync();
                try
                {
                    await waiting;
                    firstWait.TrySetResult("completed");
                }
                catch (OperationCanceledException e)
                {
                    firstWait.TrySetResult(e.CancellationToken == stop.Token ? "cancelled by its token" : "cancelled by another token");
                }
            }

            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                await session.SendAsync(message.Data, message.Type, ct);
            }
        });
        await using var client = await StartClientAsync(app);

        Assert.Equal("cancelled by its token", await firstWait.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        for (var i = 0; i < 3; i++)
        {
            await client.SendAsync(new byte[] { 7, (byte)i }, WebSocketMessageType.Binary).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            var buffer = new byte[16];
            var echo = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(new byte[] { 7, (byte)i }, buffer[..echo.Count]);
        }
    }

    [Fact]
    public async Task SessionEndsWhileTheHandlerWaits_TheWaitSaysNoMore_WithoutAWakeThatFindsNothing()
    {
        // A reader written as "while (await WaitToReadAsync()) take one" must not be woken with true at the session's end
        // and then find nothing: its next ReadAsync would throw, its TryRead fail.
        var parkedSession = new TaskCompletionSource<LifelineSession>(TaskCreationOptions.RunContinuationsAsynchronously);
        var ended = new TaskCompletionSource<(int Read, int WokenForNothing)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await StartHostAsync(async (session, ct) =>
        {
            int read = 0, wokenForNothing = 0;
            var waiting = session.Messages.WaitToReadAsync(CancellationToken.None);
            parkedSession.TrySetResult(session);
            while (await waiting)
            {
                if (session.Messages.TryRead(out var message))
                {
                    read++;
                    await session.SendAsync(message.Data, message.Type, CancellationToken.None);
                }
                else
                {
                    wokenForNothing++;
                }

                waiting = session.Messages.WaitToReadAsync(CancellationToken.None);
            }

            ended.TrySetResult((read, wokenForNothing));
        }, sessions: o => o.ResumeWindow = TimeSpan.FromMilliseconds(200));
        var client = await StartClientAsync(app);
        await client.SendAsync(new byte[] { 1 }, WebSocketMessageType.Binary).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        _ = await client.ReceiveAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var session = await parkedSession.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => session.Inbox.HasParkedReader, TimeSpan.FromSeconds(30), "the handler to wait for its next message");

        // The client goes for good; the session expires after its resume window and its reads end.
        await client.DisposeAsync();

        var (read, wokenForNothing) = await ended.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, read);
        Assert.Equal(0, wokenForNothing);
    }

    [Fact]
    public async Task TwoReadersOfOneSession_ShareItsMessages_EachOnce()
    {
        // Only one wait at a time parks on the inbox; the other reader waits on the channel. Bursts keep both busy, so a
        // wait woken while the other reader parks must neither be lost nor reset under it.
        const int messages = 2_000;
        var taken = 0;
        await using var app = await StartHostAsync(async (session, ct) =>
        {
            async Task ReadAsync()
            {
                await foreach (var message in session.Messages.ReadAllAsync(ct))
                {
                    Interlocked.Increment(ref taken);
                    await session.SendAsync(message.Data, message.Type, ct);
                }
            }

            await Task.WhenAll(Task.Run(ReadAsync, ct), Task.Run(ReadAsync, ct));
        });
        await using var client = await StartClientAsync(app);

        var echoes = 0;
        var buffer = new byte[16];
        for (var burst = 0; burst < messages / 50; burst++)
        {
            for (var i = 0; i < 50; i++)
            {
                await client.SendAsync(new byte[] { (byte)i }, WebSocketMessageType.Binary).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            }

            for (var i = 0; i < 50; i++)
            {
                _ = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                echoes++;
            }
        }

        Assert.Equal(messages, echoes);
        Assert.Equal(messages, Volatile.Read(ref taken));
    }

    [Theory]
    [InlineData("SendAsync from outside")]
    [InlineData("PushAsync")]
    [InlineData("PushAsync with state")]
    public async Task APush_DoesNotAcknowledgeTheMessageTheHandlerHolds(string push)
    {
        // A push while the handler still works on a message must not tell the client that message was handled: a crash
        // before the handler's answer would lose it. Its answer acknowledges it. The push: SendAsync from outside the
        // handler's flow (the test's own), or PushAsync from a loop the handler started (in its flow).
        var fromALoopTheHandlerStarted = push.StartsWith("PushAsync", StringComparison.Ordinal);
        var holding = new TaskCompletionSource<LifelineSession>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pushNow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await StartHostAsync(async (session, ct) =>
        {
            if (fromALoopTheHandlerStarted)
            {
                _ = Task.Run(async () =>
                {
                    await pushNow.Task.WaitAsync(ct);
                    if (push == "PushAsync")
                    {
                        await session.PushAsync("push"u8.ToArray(), cancellationToken: ct);
                    }
                    else
                    {
                        await session.PushAsync("push"u8.ToArray(), WebSocketMessageType.Binary, state => state.Set("pushed", "1"), ct);
                    }
                }, ct);
            }

            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                holding.TrySetResult(session);
                await answer.Task.WaitAsync(ct);
                await session.SendAsync(message.Data, message.Type, ct);
            }
        });
        await using var client = await StartClientAsync(app);

        await client.SendAsync("question"u8.ToArray(), WebSocketMessageType.Binary).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var session = await holding.Task.WaitAsync(TimeSpan.FromSeconds(30));
        if (fromALoopTheHandlerStarted)
        {
            pushNow.SetResult();
        }
        else
        {
            await session.SendAsync("push"u8.ToArray()).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }

        var buffer = new byte[16];
        var pushed = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("push"u8.ToArray(), buffer[..pushed.Count]);
        Assert.Equal(1, client.UnacknowledgedMessages); // the push's frame did not acknowledge the question
        Assert.Equal(push == "PushAsync with state", session.State.TryGetValue("pushed", out _)); // updated with the push

        answer.SetResult();
        var echo = await client.ReceiveAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("question"u8.ToArray(), buffer[..echo.Count]);
        Assert.Equal(0, client.UnacknowledgedMessages); // the answer's frame did
    }

    private static async Task<WebApplication> StartHostAsync(Func<LifelineSession, CancellationToken, Task> handler, Action<LifelineSessionOptions>? sessions = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var drainFile = Path.Combine(Path.GetTempPath(), $"lifeline-inbox-{Guid.NewGuid():N}.bin");
        builder.Services.AddLifelineSessions(o =>
        {
            o.DrainFilePath = drainFile;
            sessions?.Invoke(o);
        });
        var app = builder.Build();
        app.Lifetime.ApplicationStopped.Register(() => File.Delete(drainFile)); // written by the graceful stop
        app.MapLifelineSession("/s", handler);
        await app.StartAsync();
        return app;
    }

    private static async Task<LifelineClient> StartClientAsync(WebApplication app)
    {
        var client = new LifelineClient(new LifelineClientOptions
        {
            Uri = new Uri(new Uri(app.Urls.First().Replace("http://", "ws://", StringComparison.Ordinal)), "/s"),
            Session = new Lifeline.Client.SessionOptions(),
        });
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return client;
    }
}
