using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Client;

public sealed class LifelineClientReconnectTests
{
    [Fact]
    public async Task ServerAbortsTcp_ClientSees1006_ReconnectsAndReceivesAgain()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await client.SendTextAsync("before");
        Assert.Equal("before", (await Wait.ReadAsync(client.Messages)).Text);

        server.AbortAll();

        var lost = await states.NextAsync(LifelineClientState.Reconnecting);
        Assert.NotNull(lost.Close);
        Assert.Equal(CloseCode.AbnormalClosure, lost.Close.Code);
        Assert.False(lost.Close.CloseFrameReceived);
        Assert.Equal(CloseInitiator.Transport, lost.Close.Initiator);
        Assert.Equal("abnormal-closure", lost.Close.Explanation.Slug);
        // Backoff with full jitter, capped at the configured 500 ms.
        Assert.InRange(lost.ReconnectDelay!.Value, TimeSpan.Zero, TimeSpan.FromMilliseconds(500));

        await states.NextAsync(LifelineClientState.Connected);
        await client.SendTextAsync("after");
        Assert.Equal("after", (await Wait.ReadAsync(client.Messages)).Text);
        Assert.Equal(2, client.Statistics.Connects);
    }

    [Fact]
    public async Task ServerRestartWith1012_StaysDownTwoSeconds_ClientWaitsShortDelayThenReconnects()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await server.CloseAllAsync(1012, "Service Restart");
        await Wait.UntilAsync(() => server.OpenCount == 0, what: "the closing handshake");
        await server.StopAsync();
        var restart = Task.Delay(TimeSpan.FromSeconds(2)).ContinueWith(_ => server.RestartAsync()).Unwrap();

        var reconnecting = await states.NextAsync(LifelineClientState.Reconnecting);
        Assert.Equal(CloseCode.ServiceRestart, reconnecting.Close!.Code);
        Assert.True(reconnecting.Close.CloseFrameReceived);
        Assert.Equal(CloseInitiator.Server, reconnecting.Close.Initiator);
        Assert.InRange(reconnecting.ReconnectDelay!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));

        await restart;
        var connected = await states.NextAsync(LifelineClientState.Connected, TimeSpan.FromSeconds(20));

        // The client's own clock: it did not come back before the delay it announced. The delay is waited on a timer and
        // the events are stamped with the wall clock; the two may disagree by a few milliseconds (seen: 0.4 ms).
        var clockSlack = TimeSpan.FromMilliseconds(20);
        Assert.True(connected.Timestamp - reconnecting.Timestamp >= reconnecting.ReconnectDelay.Value - clockSlack,
            $"connected {connected.Timestamp - reconnecting.Timestamp} after the 1012, before its {reconnecting.ReconnectDelay} delay");
        await client.SendTextAsync("back");
        Assert.Equal("back", (await Wait.ReadAsync(client.Messages)).Text);
    }

    [Fact]
    public async Task ServerRestartWithHint_RefusedWhileDown_RetriesOnTheRestartScheduleUntilBack()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // The hint leaves a loaded machine time to stop the server first (a reconnect to the old one would be aborted:
        // a 1006 instead of the 1012); the new one comes well after it, so the client meets the refusals.
        await server.CloseAllAsync(1012, "Service Restart; retry-after-ms=1000");
        await Wait.UntilAsync(() => server.OpenCount == 0, what: "the closing handshake");
        await server.StopAsync();
        var restart = Task.Delay(TimeSpan.FromSeconds(4)).ContinueWith(_ => server.RestartAsync()).Unwrap();

        var first = await states.NextAsync(LifelineClientState.Reconnecting);
        Assert.Equal(TimeSpan.FromSeconds(1), first.ReconnectDelay);
        Assert.Equal(TimeSpan.FromSeconds(1), first.Close!.ServerHint);

        var refused = await states.NextAsync(e => e.Current == LifelineClientState.Reconnecting && e.Failure is not null);
        Assert.Equal(ConnectFailureCause.Refused, refused.Failure!.Cause);
        // The restart schedule (250 ms up to a ceiling of 1-3 s, exact values in DefaultReconnectPolicyTests), not a backoff.
        Assert.InRange(refused.ReconnectDelay!.Value, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3));

        await restart;
        var connected = await states.NextAsync(LifelineClientState.Connected, TimeSpan.FromSeconds(20));
        Assert.True(connected.Attempt >= 2);
    }

    [Fact]
    public async Task PolicyViolation1008_ClientStops()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/close/1008?reason=bad%20token")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var closed = await states.NextAsync(LifelineClientState.Closed);

        Assert.Equal(CloseCode.PolicyViolation, closed.Close!.Code);
        Assert.Equal("bad token", closed.Close.Reason);
        Assert.Equal(CloseInitiator.Server, closed.Close.Initiator);
        Assert.DoesNotContain(states.Events, e => e.Current == LifelineClientState.Reconnecting);
        await client.Completion.WaitAsync(TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<LifelineClosedException>(() => client.SendTextAsync("late").AsTask());
    }

    [Theory]
    [InlineData(7000, 7000)] // a hint longer than the 1013 backoff (5 s base plus up to 5 s of jitter) is honoured
    [InlineData(700, 5000)]  // a shorter one cannot pull the client back sooner than the backoff
    [InlineData(0, 5000)]
    public async Task TryAgainLater1013WithHint_WaitsTheLongerOfHintAndBackoff(int hintMs, int atLeastMs)
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri($"/close/1013?reason=busy;%20retry-after-ms={hintMs}")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var reconnecting = await states.NextAsync(LifelineClientState.Reconnecting);

        Assert.Equal(CloseCode.TryAgainLater, reconnecting.Close!.Code);
        Assert.InRange(reconnecting.ReconnectDelay!.Value, TimeSpan.FromMilliseconds(atLeastMs), TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData(401)]
    [InlineData(403)]
    [InlineData(404)]
    public async Task HandshakeRejected_AuthOrMissingPath_StartFailsAndClientCloses(int status)
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri($"/reject/{status}")));

        var error = await Assert.ThrowsAsync<LifelineConnectException>(() => client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15)));

        Assert.Equal(status, error.Failure!.HttpStatusCode);
        Assert.Contains($"HTTP {status}", error.Message, StringComparison.Ordinal);
        Assert.Equal(LifelineClientState.Closed, client.State);
    }

    [Fact]
    public async Task HandshakeRejected503WithRetryAfter_WaitsRetryAfter()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/reject/503?retryAfter=2")));
        var states = new StateRecorder(client);
        _ = client.StartAsync();

        var reconnecting = await states.NextAsync(LifelineClientState.Reconnecting);

        Assert.Equal(503, reconnecting.Failure!.HttpStatusCode);
        Assert.Equal(TimeSpan.FromSeconds(2), reconnecting.ReconnectDelay);
        await client.StopAsync();
    }

    [Fact]
    public async Task NothingListening_StartKeepsRetryingWithBackoff_UntilTheServerAppears()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var uri = server.Uri("/echo");
        await server.StopAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(uri));
        var states = new StateRecorder(client);

        var start = client.StartAsync();
        var refused = await states.NextAsync(e => e.Failure?.Cause == ConnectFailureCause.Refused);
        Assert.Equal(LifelineClientState.Reconnecting, refused.Current);
        await server.RestartAsync();

        await start.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(LifelineClientState.Connected, client.State);
    }

    [Fact]
    public async Task ReconnectingHook_CanVeto()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.OnReconnecting = (context, _) =>
        {
            context.Cancel = context.Close?.Code == CloseCode.AbnormalClosure;
            return ValueTask.CompletedTask;
        };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        server.AbortAll();

        var closed = await states.NextAsync(LifelineClientState.Closed);
        Assert.Equal(CloseCode.AbnormalClosure, closed.Close!.Code);
    }

    [Fact]
    public async Task ReconnectingHook_CanChangeTheDelay_AndAThrowingHandlerIsHarmless()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.OnReconnecting = (context, _) =>
        {
            context.Delay = TimeSpan.FromMilliseconds(50);
            return ValueTask.CompletedTask;
        };
        await using var client = new LifelineClient(options);
        client.StateChanged += (_, _) => throw new InvalidOperationException("a buggy handler");
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        server.AbortAll();

        Assert.Equal(TimeSpan.FromMilliseconds(50), (await states.NextAsync(LifelineClientState.Reconnecting)).ReconnectDelay);
        await states.NextAsync(LifelineClientState.Connected);
    }

    [Fact]
    public async Task BeforeConnect_RunsOnEveryAttempt_WithFreshHeaders()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var attempts = 0;
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.BeforeConnect = (context, _) =>
        {
            Interlocked.Increment(ref attempts);
            context.Options.SetRequestHeader("Authorization", $"Bearer token-{context.Attempt}");
            return ValueTask.CompletedTask;
        };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        server.AbortAll();
        await states.NextAsync(LifelineClientState.Reconnecting);
        await states.NextAsync(LifelineClientState.Connected);

        Assert.Equal(2, Volatile.Read(ref attempts));
    }

    [Fact]
    public async Task UserStop_ClosesWith1000_NoReconnect()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        await client.StopAsync(reason: "bye").WaitAsync(TimeSpan.FromSeconds(10));

        var closed = await states.NextAsync(LifelineClientState.Closed);
        Assert.Equal(CloseCode.NormalClosure, closed.Close!.Code);
        Assert.Equal(CloseInitiator.Client, closed.Close.Initiator);
        Assert.True(closed.Close.CloseFrameReceived);
        await Wait.UntilAsync(() => server.OpenCount == 0, what: "the server to release the socket");
    }

    [Fact]
    public async Task MessageOverMaxSize_ClosesWith1009()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/big/5000"));
        options.MaxMessageSize = 4096;
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var closed = await states.NextAsync(LifelineClientState.Closed);

        Assert.Equal(CloseCode.MessageTooBig, closed.Close!.Code);
        Assert.Equal(CloseInitiator.Client, closed.Close.Initiator);
    }

    [Fact]
    public async Task FragmentedLargeMessageUnderTheLimit_ArrivesWhole()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/big/200000")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var message = await Wait.ReadAsync(client.Messages);

        Assert.Equal(200_000, message.Data.Length);
    }
}
