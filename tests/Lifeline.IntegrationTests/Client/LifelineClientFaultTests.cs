using System.Text;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Reconnect;

namespace Lifeline.IntegrationTests.Client;

/// <summary>How the client reads links that misbehave: flapping, slow readers, servers that break the protocol, restarts.</summary>
public sealed class LifelineClientFaultTests
{
    [Fact]
    public async Task FlappingLink_ThatCarriesMessages_RestartsTheBackoffEachTime()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/flap"));
        options.StablePeriod = TimeSpan.FromSeconds(1); // each link (200 ms, one message) is up more than a tenth of it
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var attempts = new List<int?>();
        for (var flap = 0; flap < 5; flap++)
        {
            // The flaps: a connect attempt that failed on a loaded machine (no close record) is not one, and the next
            // link that carries its message restarts the count all the same.
            var reconnecting = await states.NextAsync(s => s.Current == LifelineClientState.Reconnecting && s.Close is not null);
            Assert.Equal(CloseCode.AbnormalClosure, reconnecting.Close!.Code);
            attempts.Add(reconnecting.Attempt);
            await states.NextAsync(LifelineClientState.Connected);
        }

        Assert.Equal([1, 1, 1, 1, 1], attempts);
    }

    [Fact]
    public async Task ServerThatAcceptsAndClosesAtOnce_StillMeetsAGrowingBackoff()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/close/1011")));
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var attempts = new List<int?>();
        for (var i = 0; i < 4; i++)
        {
            attempts.Add((await states.NextAsync(LifelineClientState.Reconnecting)).Attempt);
        }

        Assert.Equal([2, 3, 4, 5], attempts);
    }

    [Fact]
    public async Task SlowReader_WithAWatchdog_IsNotADeadLink_AndLosesNothing()
    {
        const int count = 200;
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri($"/burst/{count}"));
        options.ReceiveWatchdog = TimeSpan.FromMilliseconds(300);
        options.ReceiveCapacity = 10;
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // The buffer fills within milliseconds; stay away for several watchdog periods.
        await Wait.UntilAsync(() => client.Messages.Count == 10, what: "a full receive buffer");
        var stalled = Task.Delay(TimeSpan.FromSeconds(1.5));
        await stalled;

        var received = new List<string>();
        while (received.Count < count)
        {
            received.Add((await Wait.ReadAsync(client.Messages)).Text);
        }

        Assert.Equal(Enumerable.Range(1, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), received);
        Assert.DoesNotContain(states.Events, e => e.Current == LifelineClientState.Reconnecting);
        Assert.Equal(1, client.Statistics.Connects);
    }

    [Theory]
    [InlineData("invalid-utf8", 1007)]
    [InlineData("bad-rsv", 1002)]
    public async Task ServerBreaksTheProtocol_CloseRecordSaysTheClientFailedItWithTheCode(string fault, int expectedCode)
    {
        var frame = fault == "invalid-utf8"
            ? RawFrameServer.Frame(0x1, [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80])
            : RawFrameServer.Frame(0x1, Encoding.UTF8.GetBytes("hello"), rsv: 2);
        await using var server = RawFrameServer.Start(frame);
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var closed = await states.NextAsync(LifelineClientState.Closed);

        Assert.Equal(new CloseCode(expectedCode), closed.Close!.Code);
        Assert.Equal(CloseInitiator.Client, closed.Close.Initiator);
        Assert.Equal(CloseCause.ProtocolViolation, closed.Close.Cause);
        Assert.False(closed.Close.CloseFrameReceived);
    }

    [Theory]
    [InlineData("reserved-1005")]
    [InlineData("out-of-range-5000")]
    [InlineData("one-byte-payload")]
    [InlineData("reason-not-utf8")]
    public async Task ServerSendsAnInvalidCloseFrame_CloseRecordSaysProtocolError_NotALostLink(string fault)
    {
        byte[] payload = fault switch
        {
            "reserved-1005" => [0x03, 0xED], // 1005 may never be sent (RFC 6455 7.4.1)
            "out-of-range-5000" => [0x13, 0x88],
            "one-byte-payload" => [0x03], // a code is two bytes
            _ => [0x03, 0xE8, 0xCE, 0xBA, 0xED, 0xA0, 0x80], // 1000 with a reason that is not UTF-8
        };
        await using var server = RawFrameServer.Start(RawFrameServer.Frame(0x8, payload));
        var options = new LifelineClientOptions { Uri = server.Uri, ReconnectPolicy = NeverReconnectPolicy.Instance, CloseTimeout = TimeSpan.FromSeconds(2) };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var closed = await states.NextAsync(LifelineClientState.Closed);

        Assert.Equal(CloseCode.ProtocolError, closed.Close!.Code);
        Assert.Equal(CloseInitiator.Client, closed.Close.Initiator);
        Assert.Equal(CloseCause.ProtocolViolation, closed.Close.Cause);
        Assert.Contains("invalid Close frame", closed.Close.Description, StringComparison.Ordinal);
        Assert.True(closed.Close.CloseFrameReceived);

        // On the wire, the client's answer was a Close frame with 1002.
        var (opcode, answer) = (await server.FirstConnectionFramesAsync(TimeSpan.FromSeconds(30)))[0];
        Assert.Equal(0x8, opcode);
        Assert.Equal(1002, (answer[0] << 8) | answer[1]);
    }

    [Fact]
    public async Task NeverReconnectPolicy_AfterALostLink_Closes()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = ClientTestOptions.Fast(server.Uri("/echo"));
        options.ReconnectPolicy = NeverReconnectPolicy.Instance;
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        server.AbortAll();

        var closed = await states.NextAsync(LifelineClientState.Closed);
        Assert.Equal(CloseCode.AbnormalClosure, closed.Close!.Code);
        Assert.DoesNotContain(states.Events, e => e.Current == LifelineClientState.Reconnecting);
    }

    [Fact]
    public async Task RefusedConnects_AfterA1012_AreRetriedOnAShortScheduleUntilTheServerIsBack()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var options = new LifelineClientOptions
        {
            Uri = server.Uri("/echo"),
            ReconnectPolicy = new DefaultReconnectPolicy(), // the real defaults: 1 s base, doubling to 30 s
            CloseTimeout = TimeSpan.FromSeconds(2),
        };
        await using var client = new LifelineClient(options);
        var states = new StateRecorder(client);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        // The announced restart: 1012 with a short hint, then the port refuses for a while. The hint leaves a loaded
        // machine time to stop the server first: a reconnect to the old one would be aborted, a 1006 instead of the 1012.
        await server.CloseAllAsync(1012, "Service Restart; retry-after-ms=1000");
        await Wait.UntilAsync(() => server.OpenCount == 0, what: "the closing handshake");
        await server.StopAsync();
        await states.NextAsync(LifelineClientState.Reconnecting);
        var refusals = new List<LifelineStateChangedEventArgs>();
        while (refusals.Count < 6)
        {
            refusals.Add(await states.NextAsync(e => e.Current == LifelineClientState.Reconnecting && e.Failure is not null));
        }

        await server.RestartAsync();
        await states.NextAsync(LifelineClientState.Connected, TimeSpan.FromSeconds(15));

        // Exponential backoff from 1 s would reach attempt 7 with delays up to 30 s; inside the restart window
        // every retry stays on the short schedule: 250 ms up to a ceiling of 1-3 s (exact values in DefaultReconnectPolicyTests).
        Assert.All(refusals, r => Assert.InRange(r.ReconnectDelay!.Value, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3)));
    }
}
