using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

/// <summary>Refused upgrades must cost little: a short close handshake, and only so many at once.</summary>
public sealed class RefusalTests
{
    [Fact]
    public async Task Refusal_ClientNeverAnswersTheClose_SocketIsDroppedAfterTheShortBound()
    {
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.Authorize = _ => ValueTask.FromResult(false);
            // 1 s, not less: the server drops the socket after this bound whether or not the client has read the
            // 101 and the Close yet, and the drop resets the connection. With 200 ms a client slowed down by a loaded
            // machine (the first test of a run, still compiling) lost the unread bytes to that reset.
            o.RefusalCloseTimeout = TimeSpan.FromSeconds(1);
        });
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);
        Assert.Equal(1008, await client.ReadCloseCodeAsync(TimeSpan.FromSeconds(15)));

        // Never answer: the server lets go after its 1 s bound, well before the old fixed 5 s.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        await client.WaitForEndAsync(TimeSpan.FromSeconds(15));
        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(4), $"the refused socket was held for {waited.Elapsed}");
    }

    [Fact]
    public async Task Refusal_MoreInTheirCloseHandshakeThanTheCap_AreRefusedWith503WithoutAnUpgrade()
    {
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.MaxConnections = 1;
            o.MaxRefusalsInFlight = 2;
            o.RefusalCloseTimeout = TimeSpan.FromSeconds(30);
        });
        await using var admitted = await PlainClient.ConnectAsync(host.Uri());

        // Two clients over capacity that never answer the Close frame fill the cap...
        using var first = await RawWebSocketClient.ConnectAsync(host.Port);
        using var second = await RawWebSocketClient.ConnectAsync(host.Port);
        Assert.Equal(1013, await first.ReadCloseCodeAsync(TimeSpan.FromSeconds(15)));
        Assert.Equal(1013, await second.ReadCloseCodeAsync(TimeSpan.FromSeconds(15)));

        // ...so the next refusal costs no upgraded socket at all.
        var error = await Assert.ThrowsAsync<IOException>(() => RawWebSocketClient.ConnectAsync(host.Port));
        Assert.Contains("HTTP/1.1 503", error.Message, StringComparison.Ordinal);
        Assert.Contains("Retry-After", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Refusal_UnauthorizedBeyondTheCap_Gets403WithoutRetryAfter()
    {
        await using var host = await LifelineTestHost.StartAsync(o =>
        {
            o.Authorize = _ => ValueTask.FromResult(false);
            o.MaxRefusalsInFlight = 2;
            o.RefusalCloseTimeout = TimeSpan.FromSeconds(30);
        });
        using var first = await RawWebSocketClient.ConnectAsync(host.Port);
        using var second = await RawWebSocketClient.ConnectAsync(host.Port);
        Assert.Equal(1008, await first.ReadCloseCodeAsync(TimeSpan.FromSeconds(15)));
        Assert.Equal(1008, await second.ReadCloseCodeAsync(TimeSpan.FromSeconds(15)));

        // Before, 503 with Retry-After: clients retry a 5xx, so a refusal meant "stop" (1008) became "come back in 5 s".
        var error = await Assert.ThrowsAsync<IOException>(() => RawWebSocketClient.ConnectAsync(host.Port));
        Assert.Contains("HTTP/1.1 403", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Retry-After", error.Message, StringComparison.OrdinalIgnoreCase);
    }
}
