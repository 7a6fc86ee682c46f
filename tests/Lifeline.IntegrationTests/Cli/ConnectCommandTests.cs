using System.Text.Json;
using Lifeline.Cli;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

public sealed class ConnectCommandTests
{
    private static readonly string[] Fields = ["time", "event", "code", "reason", "closeFrameReceived", "delayMs", "attempt", "data", "binary"];

    [Fact]
    public async Task Connect_Json_EchoesLinesThenClosesAtEndOfInput_ExitsZero()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var cli = CliProcess.Start("hello\nworld\n", "connect", server.Uri("/echo").ToString(), "--json");

        // The end of stdin closes with 1000 once both lines are sent; the echoes arrive before the server's Close reply.
        Assert.Equal(0, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        var lines = cli.JsonLines;
        Assert.All(lines, line => Assert.All(Fields, field => Assert.True(line.TryGetProperty(field, out _), $"missing {field} in {line}")));
        // State events and messages are printed by two loops: their relative order is not fixed, the content is.
        Assert.Equal("connecting", lines[0].GetProperty("event").GetString());
        Assert.Single(lines, l => l.GetProperty("event").GetString() == "connected");
        Assert.Equal(["hello", "world"], lines.Where(l => l.GetProperty("event").GetString() == "message").Select(l => l.GetProperty("data").GetString()));
        Assert.All(lines.Where(l => l.GetProperty("event").GetString() == "message"), l => Assert.False(l.GetProperty("binary").GetBoolean()));
        Assert.True(DateTimeOffset.TryParse(lines[0].GetProperty("time").GetString(), out _));
        Assert.Equal("stopped", lines.Last(l => l.GetProperty("event").GetString() != "message").GetProperty("event").GetString());
    }

    [Fact]
    public async Task Connect_ServerClosesWith1008_PrintsClosedAndStopped_ExitsClosedByPolicy()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var cli = CliProcess.Start(string.Empty, "connect", server.Uri("/close/1008?reason=go%20away").ToString(), "--json", "--no-stdin");

        var exit = await cli.Exit.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(ExitCodes.ClosedByPolicy, exit);
        var closed = cli.JsonLines.Single(l => l.GetProperty("event").GetString() == "closed");
        Assert.Equal(1008, closed.GetProperty("code").GetInt32());
        Assert.Equal("go away", closed.GetProperty("reason").GetString());
        Assert.True(closed.GetProperty("closeFrameReceived").GetBoolean());
        Assert.Equal("stopped", cli.JsonLines[^1].GetProperty("event").GetString());
        Assert.DoesNotContain(cli.JsonLines, l => l.GetProperty("event").GetString() == "reconnecting");
    }

    [Fact]
    public async Task Connect_ServerClosesWith1000_ExitsZero()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var cli = CliProcess.Start(string.Empty, "connect", server.Uri("/close/1000").ToString(), "--json", "--no-stdin");

        Assert.Equal(0, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task Connect_StopOnPrivateCode_StopsInsteadOfBackingOff()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var cli = CliProcess.Start(string.Empty, "connect", server.Uri("/close/4001").ToString(), "--json", "--stop-on", "4001", "--no-stdin");

        Assert.Equal(ExitCodes.ClosedByPolicy, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.DoesNotContain(cli.JsonLines, l => l.GetProperty("event").GetString() == "reconnecting");
    }

    [Fact]
    public async Task Connect_ServerAborts_PrintsClosed1006ThenReconnectingWithDelay()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var cli = CliProcess.Start(string.Empty, "connect", server.Uri("/echo").ToString(), "--json", "--no-stdin");
        await cli.WaitForEventAsync("connected");

        server.AbortAll();
        await cli.WaitForEventAsync("reconnecting");

        var closed = cli.JsonLines.First(l => l.GetProperty("event").GetString() == "closed");
        Assert.Equal(1006, closed.GetProperty("code").GetInt32());
        Assert.False(closed.GetProperty("closeFrameReceived").GetBoolean());
        var reconnecting = cli.JsonLines.First(l => l.GetProperty("event").GetString() == "reconnecting");
        Assert.Equal(JsonValueKind.Number, reconnecting.GetProperty("delayMs").ValueKind);
        Assert.Equal(JsonValueKind.Number, reconnecting.GetProperty("attempt").ValueKind);
    }

    [Theory]
    [InlineData("not a url")]
    [InlineData("http://127.0.0.1:1/x")]
    public async Task Connect_BadUrl_ExitCode2WithMessage(string url)
    {
        await using var cli = CliProcess.Start(string.Empty, "connect", url);

        Assert.Equal(2, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("ws://", cli.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--keepalive", "-1")]
    [InlineData("--keepalive-timeout", "0")]
    [InlineData("--stop-on", "banana")]
    public async Task Connect_BadOption_ExitCode2(string option, string value)
    {
        await using var cli = CliProcess.Start(string.Empty, "connect", "ws://127.0.0.1:1/x", option, value);

        Assert.Equal(2, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.StartsWith("error:", cli.Error, StringComparison.Ordinal);
    }
}
