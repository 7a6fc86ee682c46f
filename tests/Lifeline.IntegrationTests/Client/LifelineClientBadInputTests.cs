using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Client;

public sealed class LifelineClientBadInputTests
{
    [Theory]
    [InlineData("http://127.0.0.1:1/ws", "scheme 'http'")]
    [InlineData("ftp://127.0.0.1/ws", "scheme 'ftp'")]
    public void Uri_WrongScheme_ThrowsNamingTheScheme(string uri, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => new LifelineClientOptions { Uri = new Uri(uri) });
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains("ws://", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Uri_Relative_Throws()
    {
        var error = Assert.Throws<ArgumentException>(() => new LifelineClientOptions { Uri = new Uri("/ws", UriKind.Relative) });
        Assert.Contains("absolute", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_MissingUri_ThrowsAtConstruction()
    {
        var error = Assert.Throws<ArgumentException>(() => new LifelineClient(new LifelineClientOptions()));
        Assert.Contains("Uri is required", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, new[] { "" }, "not a subprotocol name")]
    [InlineData(false, new[] { "chat v2" }, "not a subprotocol name")]
    [InlineData(false, new[] { "chat", "CHAT" }, "twice")]
    [InlineData(true, new[] { "lifeline.v1" }, "offers itself when Session is set")]
    public void Options_BadSubProtocols_ThrowAtConstructionSayingWhatToChange(bool session, string[] subProtocols, string expected)
    {
        // Before, ClientWebSocket threw at the first connect, outside the connect's error handling: the client went to
        // Closed with no failure recorded, StartAsync said only "The client closed before it could connect".
        var options = new LifelineClientOptions { Uri = new Uri("ws://127.0.0.1:1/ws"), Session = session ? new SessionOptions() : null };
        foreach (var subProtocol in subProtocols)
        {
            options.SubProtocols.Add(subProtocol);
        }

        var error = Assert.Throws<ArgumentException>(() => new LifelineClient(options));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal("SubProtocols", error.ParamName);
    }

    [Fact]
    public void Options_OutOfRange_ThrowNamingTheSetting()
    {
        var options = new LifelineClientOptions();
        Assert.Contains("KeepAliveInterval", Assert.Throws<ArgumentOutOfRangeException>(() => options.KeepAliveInterval = TimeSpan.FromSeconds(-1)).Message, StringComparison.Ordinal);
        Assert.Contains("MaxMessageSize", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxMessageSize = 0).Message, StringComparison.Ordinal);
        Assert.Contains("ConnectTimeout", Assert.Throws<ArgumentOutOfRangeException>(() => options.ConnectTimeout = TimeSpan.Zero).Message, StringComparison.Ordinal);
        Assert.Contains("ReceiveWatchdog", Assert.Throws<ArgumentOutOfRangeException>(() => options.ReceiveWatchdog = TimeSpan.Zero).Message, StringComparison.Ordinal);
        Assert.Contains("ReceiveCapacity", Assert.Throws<ArgumentOutOfRangeException>(() => options.ReceiveCapacity = 0).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_DurationsLongerThanATimerWaits_ThrowNamingTheLimit_AndTheLongestStillConnects()
    {
        // Timers wait at most 2^32-2 ms (about 49.7 days). Before, a 60-day ConnectTimeout was accepted and the client
        // closed at once: "The client closed before it could connect", with no failure recorded.
        var options = new LifelineClientOptions();
        var session = new SessionOptions();
        var policy = new Lifeline.Reconnect.ReconnectPolicyOptions();
        OptionAssert.RejectLongerThanATimer(
            ("ConnectTimeout", d => options.ConnectTimeout = d),
            ("CloseTimeout", d => options.CloseTimeout = d),
            ("KeepAliveInterval", d => options.KeepAliveInterval = d),
            ("KeepAliveTimeout", d => options.KeepAliveTimeout = d),
            ("ReceiveWatchdog", d => options.ReceiveWatchdog = d),
            ("HandshakeTimeout", d => session.HandshakeTimeout = d),
            ("MaxAge", d => session.Replay.MaxAge = d),
            ("BaseDelay", d => policy.BaseDelay = d));

        await using var server = await TestWebSocketServer.StartAsync();
        var longest = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
        var connecting = ClientTestOptions.Fast(server.Uri("/echo"));
        connecting.ConnectTimeout = longest;
        connecting.CloseTimeout = longest;
        await using var client = new LifelineClient(connecting);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await client.SendTextAsync("at the longest timeouts");
        Assert.Equal("at the longest timeouts", (await Wait.ReadAsync(client.Messages)).Text);

        // A connection's end waits for the send lock at most CloseTimeout: that wait must take the longest value too (a
        // wait that refused it would end the client for good here instead of reconnecting).
        server.AbortAll();
        await Wait.UntilAsync(() => client.Statistics.Connects == 2, TimeSpan.FromSeconds(30), "the reconnect after the link was cut");
        await client.SendTextAsync("again");
        Assert.Equal("again", (await Wait.ReadAsync(client.Messages)).Text);
    }

    [Fact]
    public async Task Stop_ReasonOver123Bytes_ThrowsAndConnectionSurvives()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.StopAsync(reason: new string('x', 124)));
        Assert.Contains("124 bytes", error.Message, StringComparison.Ordinal);

        await client.SendTextAsync("still here");
        Assert.Equal("still here", (await Wait.ReadAsync(client.Messages)).Text);
    }

    [Theory]
    [InlineData(1006)]
    [InlineData(1005)]
    [InlineData(1015)]
    [InlineData(1004)]
    [InlineData(2000)]
    public async Task Stop_WithACodeThatMayNotBeSent_Throws(int code)
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.StopAsync(new CloseCode(code)));
        Assert.Contains("may not be sent", error.Message, StringComparison.Ordinal);
        Assert.Equal(LifelineClientState.Connected, client.State);
    }

    [Fact]
    public async Task Send_AfterDispose_ThrowsClosed_StartThrowsObjectDisposed()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await client.DisposeAsync();

        await Assert.ThrowsAsync<LifelineClosedException>(() => client.SendTextAsync("x").AsTask());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.StartAsync());
    }

    [Fact]
    public async Task Start_Twice_Throws()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => client.StartAsync());
        Assert.Contains("already started", error.Message, StringComparison.Ordinal);
    }
}
