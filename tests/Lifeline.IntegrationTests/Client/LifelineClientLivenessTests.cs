using System.Diagnostics;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.FaultProxy;
using Lifeline.FaultProxy.Toxics;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.IntegrationTests.Sessions;

namespace Lifeline.IntegrationTests.Client;

[Collection(SerialCollection.Name)]
public sealed class LifelineClientLivenessTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task BlackHole_WithKeepAlive_DetectedAsKeepAliveTimeout()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        var options = ClientTestOptions.Fast(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/echo"));
        options.KeepAliveInterval = TimeSpan.FromSeconds(1);
        options.KeepAliveTimeout = TimeSpan.FromSeconds(2);
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var holed = Stopwatch.StartNew();
        proxy.AddToxic(new BlackHoleToxic());

        // Expected after about 3-3.5 s (a ping after 1 s of silence, 2 s for the Pong, checked every 250 ms); the bound is
        // generous for a loaded machine. Without keep-alive the link is not found dead at all (the next test).
        var lost = await states.NextAsync(LifelineClientState.Reconnecting, TimeSpan.FromSeconds(30));
        var detectedAfter = holed.Elapsed;
        output.WriteLine($"black hole detected after {detectedAfter.TotalMilliseconds:0} ms (keep-alive 1 s, timeout 2 s)");
        Assert.Equal(CloseCode.AbnormalClosure, lost.Close!.Code);
        Assert.Equal(CloseInitiator.Transport, lost.Close.Initiator);
        Assert.Equal(CloseCause.KeepAliveTimeout, lost.Close.Cause);
        Assert.StartsWith("keep-alive timeout", lost.Close.Description, StringComparison.Ordinal);
        Assert.True(detectedAfter >= TimeSpan.FromSeconds(2), $"detected after {detectedAfter}: before the Pong timeout could have run out");
    }

    [Fact]
    public async Task OneMessageLongerToWriteThanIntervalPlusTimeout_OverASlowButLiveLink_IsNotTakenForADeadLink()
    {
        // 48 MiB through a link that carries 8 MiB/s takes about 6 s to write, far more than the kernel's buffers hold;
        // the server sends nothing meanwhile. The ping keep-alive asks for after 1 s cannot be written inside the frame.
        // Before, the timeout ran from that request, and the link was declared dead 3 s later, mid-write: the message
        // was put back and the next connection was cut the same way, forever. A write that keeps moving is a live link.
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        var options = ClientTestOptions.Fast(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/count"));
        options.KeepAliveInterval = TimeSpan.FromSeconds(1);
        options.KeepAliveTimeout = TimeSpan.FromSeconds(3);
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        proxy.AddToxic(new BandwidthToxic(8L << 20), Direction.Upstream);

        const int Big = 48 << 20;
        await client.SendAsync(new byte[Big]).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        await Wait.UntilAsync(() => !server.ReceivedLengths.IsEmpty, TimeSpan.FromSeconds(60), "the message at the server");

        Assert.Equal([Big], server.ReceivedLengths.ToArray());
        Assert.Equal(1, client.Statistics.Connects);
        Assert.Equal(LifelineClientState.Connected, client.State);
    }

    [Fact]
    public async Task BlackHoleWhileALargeMessageIsWritten_DetectedAsKeepAliveTimeout()
    {
        // The other side of the test above: a write that stops moving (the link became a black hole under it) must not
        // keep the link alive. Whenever the hole opens, before or during the write, the write stalls and the ping's
        // timeout runs out.
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        var options = ClientTestOptions.Fast(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/count"));
        options.KeepAliveInterval = TimeSpan.FromSeconds(1);
        options.KeepAliveTimeout = TimeSpan.FromSeconds(2);
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        proxy.AddToxic(new BandwidthToxic(8L << 20), Direction.Upstream);

        var send = client.SendAsync(new byte[48 << 20]).AsTask();
        await Task.Delay(500); // the write is likely under way; the outcome is the same if it is not
        proxy.AddToxic(new BlackHoleToxic());

        var lost = await states.NextAsync(LifelineClientState.Reconnecting, TimeSpan.FromSeconds(60));
        Assert.Equal(CloseCause.KeepAliveTimeout, lost.Close!.Cause);
        await send.WaitAsync(TimeSpan.FromSeconds(30)); // kept for the next connection: not an error
    }

    [Fact]
    public async Task BlackHole_WithoutKeepAlive_IsNotDetectedInTheSameTime()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        var options = ClientTestOptions.Fast(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/echo"));
        options.KeepAliveInterval = TimeSpan.Zero;
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        proxy.AddToxic(new BlackHoleToxic());

        await Assert.ThrowsAsync<TimeoutException>(() => states.NextAsync(LifelineClientState.Reconnecting, TimeSpan.FromSeconds(4)));
        Assert.Equal(LifelineClientState.Connected, client.State);
    }

    [Fact]
    public async Task ReceiveWatchdog_SilentServer_DeclaredDeadAs1006()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/silent"));
        options.KeepAliveInterval = TimeSpan.Zero;
        options.ReceiveWatchdog = TimeSpan.FromMilliseconds(500);
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var lost = await states.NextAsync(LifelineClientState.Reconnecting);

        Assert.Equal(CloseCode.AbnormalClosure, lost.Close!.Code);
        Assert.Equal(CloseCause.ReceiveWatchdog, lost.Close.Cause);
    }

    [Fact]
    public async Task ReceiveWatchdog_EndedTheLastConnection_AResetDuringTheNextResume_IsNotBlamedOnIt()
    {
        var log = new NumberedServerLog { ServerSendCount = 0 };
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-test-{Guid.NewGuid():N}.bin"));
        await using var proxy = new TcpFaultProxy("127.0.0.1", host.Port).Start();
        var options = SessionResumeTests.SessionClient(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/silent"));
        options.KeepAliveInterval = TimeSpan.Zero;
        options.ReceiveWatchdog = TimeSpan.FromSeconds(1);
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);

        // The resume that follows the watchdog's end is reset by the proxy before it is answered.
        var resets = 0;
        host.Sessions.BeforeResumeAttachForTest = () =>
        {
            if (Interlocked.Increment(ref resets) == 1)
            {
                proxy.ResetAll();
            }

            return Task.CompletedTask;
        };
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var first = await states.NextAsync(LifelineClientState.Reconnecting, TimeSpan.FromSeconds(30));
        Assert.Equal(CloseCause.ReceiveWatchdog, first.Close!.Cause);
        var second = await states.NextAsync(LifelineClientState.Reconnecting, TimeSpan.FromSeconds(30));

        // Before, the flag the watchdog set stayed set until the next receive loop, which the failed handshake never reached.
        Assert.True(Volatile.Read(ref resets) >= 1); // the next resume may already be under way
        Assert.NotEqual(CloseCause.ReceiveWatchdog, second.Close!.Cause);
        host.Sessions.BeforeResumeAttachForTest = null;
    }

    [Fact]
    public async Task ReceiveWatchdog_ServerSendingHeartbeats_StaysConnected()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.ReceiveWatchdog = TimeSpan.FromSeconds(2);
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        for (var i = 0; i < 8; i++)
        {
            await server.SendToAllAsync("heartbeat");
            Assert.Equal("heartbeat", (await Wait.ReadAsync(client.Messages)).Text);
            await Task.Delay(200);
        }

        Assert.Equal(LifelineClientState.Connected, client.State);
        Assert.DoesNotContain(states.Events, e => e.Current == LifelineClientState.Reconnecting);
    }

    [Fact]
    public async Task ProxyFin_WithoutCloseFrame_ReportedAs1006AndReconnects()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        await using var client = new LifelineClient(ClientTestOptions.Fast(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/echo")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        proxy.CloseAllWithFin();

        var lost = await states.NextAsync(LifelineClientState.Reconnecting);
        Assert.Equal(CloseCode.AbnormalClosure, lost.Close!.Code);
        Assert.False(lost.Close.CloseFrameReceived);
        await states.NextAsync(LifelineClientState.Connected);
    }

    [Fact]
    public async Task SlicedAndDelayedLink_MessagesStillArriveWhole()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        proxy.AddToxic(new SlicerToxic(7));
        proxy.AddToxic(new LatencyToxic(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(10)));
        await using var client = new LifelineClient(ClientTestOptions.Fast(new Uri($"ws://127.0.0.1:{proxy.EndPoint.Port}/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var text = string.Concat(Enumerable.Repeat("sliced-", 100));
        await client.SendTextAsync(text);

        Assert.Equal(text, (await Wait.ReadAsync(client.Messages)).Text);
    }
}
