using System.Net.WebSockets;
using Lifeline.FaultProxy;
using Lifeline.FaultProxy.Toxics;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Protocol;

namespace Lifeline.IntegrationTests.Server;

public sealed class AdmissionAndHeartbeatTests
{
    [Fact]
    public async Task OverCapacity_Gets1013WithAHint_OthersUnaffected()
    {
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.MaxConnections = 2;
            o.TryAgainLaterHint = TimeSpan.FromSeconds(3);
        });
        await using var first = await PlainClient.ConnectAsync(host.Uri());
        await using var second = await PlainClient.ConnectAsync(host.Uri());
        await Wait.UntilAsync(() => host.Registry.Count == 2);

        await using var third = await PlainClient.ConnectAsync(host.Uri());
        var close = await third.Closed.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(1013, close.Code);
        Assert.True(RetryHint.TryParse(close.Reason, out var hint));
        Assert.Equal(TimeSpan.FromSeconds(3), hint);
        await first.SendTextAsync("still fine");
        await Wait.UntilAsync(() => first.Messages.Contains("still fine"));
        Assert.Equal(2, host.Registry.Count);
    }

    [Fact]
    public async Task OverCapacity_AfterOneLeaves_ANewOneIsAdmitted()
    {
        await using var host = await LifelineTestHost.StartAsync(o => o.MaxConnections = 1);
        var first = await PlainClient.ConnectAsync(host.Uri());
        await Wait.UntilAsync(() => host.Registry.Count == 1);
        await first.Socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        await first.DisposeAsync();
        await Wait.UntilAsync(() => host.Registry.Count == 0);

        await using var next = await PlainClient.ConnectAsync(host.Uri());
        await next.SendTextAsync("admitted");
        await Wait.UntilAsync(() => next.Messages.Contains("admitted"));
    }

    [Fact]
    public async Task OverRate_Gets1013()
    {
        await using var host = await LifelineTestHost.StartAsync(o => o.MaxNewConnectionsPerSecond = 1);

        // Ten connects at once: whatever the window alignment and however slow the machine, they cannot span the ten
        // one-second windows it would take to admit them all, so some are refused, and every refusal is a 1013.
        var clients = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => PlainClient.ConnectAsync(host.Uri())));
        await Wait.UntilAsync(() => clients.Any(c => c.Closed.IsCompleted), what: "a refusal");
        var refused = clients.Where(c => c.Closed.IsCompleted).Select(c => c.Closed.Result.Code).ToArray();
        Assert.NotEmpty(refused);
        Assert.All(refused, code => Assert.Equal(1013, code));
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public void AdmissionRateLimiter_FakeTime_AdmitsThePermitsPerWindowExactly()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var limiter = new Lifeline.AspNetCore.AdmissionRateLimiter(3, time);

        Assert.Equal([true, true, true, false, false], Enumerable.Range(0, 5).Select(_ => limiter.TryAcquire()).ToArray());
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(limiter.TryAcquire());
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal([true, true, true, false], Enumerable.Range(0, 4).Select(_ => limiter.TryAcquire()).ToArray());
    }

    [Fact]
    public async Task DeadClientBehindBlackHole_IsReleasedAfterTheKeepAliveTimeout()
    {
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.KeepAliveInterval = TimeSpan.FromMilliseconds(500);
            o.KeepAliveTimeout = TimeSpan.FromSeconds(1);
        });
        await using var proxy = new TcpFaultProxy("127.0.0.1", host.Port).Start();
        await using var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/ws"));
        await Wait.UntilAsync(() => host.Registry.Count == 1);

        proxy.AddToxic(new BlackHoleToxic());

        await Wait.UntilAsync(() => host.Registry.Count == 0, TimeSpan.FromSeconds(10), "the dead client to be released");
    }

    [Fact]
    public async Task IdleTimeout_SilentClient_ClosedWith3008()
    {
        await using var host = await LifelineTestHost.StartAsync(o => o.IdleTimeout = TimeSpan.FromMilliseconds(500));
        await using var client = await PlainClient.ConnectAsync(host.Uri());

        var close = await client.Closed.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(3008, close.Code);
        Assert.Equal("idle timeout", close.Reason);
    }

    [Fact]
    public async Task IdleTimeout_ClientThatNeverAnswersTheClose_IsAbortedAfterTheSendTimeout_TheHandlerEnds()
    {
        var handlerEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(
            o =>
            {
                o.IdleTimeout = TimeSpan.FromMilliseconds(500);
                o.KeepAliveInterval = TimeSpan.Zero; // nothing else finds a frozen client
                o.SendTimeout = TimeSpan.FromSeconds(2);
            },
            handler: async (connection, _) =>
            {
                await foreach (var message in connection.Messages.ReadAllAsync())
                {
                }

                handlerEnded.SetResult();
            });

        // A frozen application: its TCP stack takes the Close frame, but it never reads, so it never answers.
        using var frozen = new ClientWebSocket();
        frozen.Options.KeepAliveInterval = TimeSpan.Zero;
        await frozen.ConnectAsync(host.Uri(), CancellationToken.None);

        // Before, the receive loop waited for the answer for ever: the handler, and the connection's slot, with it.
        await handlerEnded.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => host.Registry.Count == 0, TimeSpan.FromSeconds(30), "the connection to be released");
    }

    [Fact]
    public async Task Authorize_Refused_ClosedWith1008()
    {
        await using var host = await LifelineTestHost.StartAsync(o =>
            o.Authorize = context => ValueTask.FromResult(context.Request.Query["token"] == "secret"));

        await using var refused = await PlainClient.ConnectAsync(host.Uri("/ws?token=wrong"));
        await using var allowed = await PlainClient.ConnectAsync(host.Uri("/ws?token=secret"));

        Assert.Equal(1008, (await refused.Closed.WaitAsync(TimeSpan.FromSeconds(15))).Code);
        await allowed.SendTextAsync("in");
        await Wait.UntilAsync(() => allowed.Messages.Contains("in"));
    }

    [Fact]
    public async Task ClientClosesRightAfterSending_HandlerStillReadsEveryMessage()
    {
        var seen = new TaskCompletionSource<string[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, closing) =>
        {
            // A slow handler: it only starts reading once the connection is already closing.
            await Task.Delay(Timeout.Infinite, closing).ContinueWith(_ => { }, TaskScheduler.Default);
            var texts = new List<string>();
            await foreach (var message in connection.Messages.ReadAllAsync())
            {
                texts.Add(message.Text);
            }

            seen.TrySetResult([.. texts]);
        });
        await using var client = await PlainClient.ConnectAsync(host.Uri());

        await client.SendTextAsync("a");
        await client.SendTextAsync("b");
        await client.SendTextAsync("c");
        await client.Socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);

        Assert.Equal(["a", "b", "c"], await seen.Task.WaitAsync(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task LifelineClient_OffersSubprotocol_ServerConnectionSeesIt()
    {
        var negotiated = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: (connection, ct) =>
        {
            negotiated.TrySetResult(connection.SubProtocol);
            return LifelineTestHost.EchoAsync(connection, ct);
        });
        var options = new Lifeline.Client.LifelineClientOptions { Uri = host.Uri() };
        // Not lifeline.v1: a plain endpoint never selects the session protocol (docs/protocol.md 5.1).
        options.SubProtocols.Add("chat.v2");
        await using var client = new Lifeline.Client.LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal("chat.v2", await negotiated.Task.WaitAsync(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task Groups_SendToGroup_ReachesOnlyMembers()
    {
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, ct) =>
        {
            if (connection.Query["group"] is { Count: > 0 } group)
            {
                connection.JoinGroup(group!);
            }

            await LifelineTestHost.EchoAsync(connection, ct);
        });
        await using var red = await PlainClient.ConnectAsync(host.Uri("/ws?group=red"));
        await using var blue = await PlainClient.ConnectAsync(host.Uri("/ws?group=blue"));
        // Registered first, then the handler joins: wait for the memberships, not only the connections.
        await Wait.UntilAsync(() => host.Registry.GroupMembers("red").Count == 1 && host.Registry.GroupMembers("blue").Count == 1,
            what: "both handlers to join their groups");

        Assert.Equal(1, await host.Registry.SendToGroupAsync("red", "for red"));
        Assert.Equal(2, await host.Registry.SendToAllAsync("for all"));

        await Wait.UntilAsync(() => red.Messages.Count == 2 && blue.Messages.Count == 1);
        Assert.Equal(["for red", "for all"], red.Messages);
        Assert.Equal(["for all"], blue.Messages);

        var redConnection = Assert.Single(host.Registry.GroupMembers("red"));
        Assert.Equal(["red"], redConnection.Groups);
        redConnection.LeaveGroup("red");
        Assert.Equal(0, await host.Registry.SendToGroupAsync("red", "nobody"));
        Assert.Empty(host.Registry.GroupMembers("red"));
    }
}
