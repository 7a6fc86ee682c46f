using System.Text.Json;
using Lifeline.Cli;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary><c>lifeline connect</c> as a real process: how it ends, what it sends, its exit codes.</summary>
[Collection(ToolProcessCollection.Name)]
public sealed class ProcessConnectTests
{
    private const int MiB = 1024 * 1024;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Connect_StdinEnds_SendsEveryLineThenClosesWith1000_Exit0()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/echo").ToString(), "-j");
        await tool.Input.WriteAsync("one\ntwo\r\nthree");
        tool.CloseInput();

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        Assert.Equal(["one", "two", "three"], server.Received);
        Assert.Equal(1, server.CloseFramesReceived);
        Assert.Equal(["one", "two", "three"], Messages(tool));
    }

    [Fact]
    public async Task Connect_OneMebibyteLine_IsSentWhole_AndPrintedOnOneLine()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/echo").ToString(), "--json");
        var line = new string('a', MiB);
        await tool.Input.WriteAsync(line + "\nafter\n");
        tool.CloseInput();

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        Assert.Equal([line, "after"], Messages(tool)); // every stdout line parsed as one JSON document
        Assert.Empty(tool.Error);
    }

    [Fact]
    public async Task Connect_LineLongerThanTheLimit_IsRefusedOnStderr_AndTheNextLinesStillGo()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/echo").ToString(), "--json");
        await tool.Input.WriteAsync("before\n" + new string('b', MiB + 1) + "\nafter\n");
        tool.CloseInput();

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        Assert.Equal(["before", "after"], Messages(tool));
        Assert.Contains($"error: line 2 is {MiB + 1} bytes, longer than --max-message ({MiB} bytes); not sent", tool.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_LineThatIsNotUtf8_IsRefusedOnStderr_AndTheNextLinesStillGo()
    {
        // Before, it went out as a text message: the server closed the connection with 1007, and nothing after it was sent.
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/echo").ToString(), "--json");
        await tool.Input.WriteAsync("before\n");
        await tool.Input.BaseStream.WriteAsync(new byte[] { 0xFF, 0xFE, (byte)'\n' });
        await tool.Input.BaseStream.FlushAsync();
        await tool.Input.WriteAsync("after\n");
        tool.CloseInput();

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        Assert.Equal(["before", "after"], server.Received);
        Assert.Equal(["before", "after"], Messages(tool));
        Assert.Contains("error: line 2 is not valid UTF-8, which a text message must be; not sent", tool.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_NoStdin_KeepsListeningAfterStdinEnds_UntilMaxTime_Exit5()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/echo").ToString(), "--json", "--no-stdin", "--max-time", "8"); // room for a cold start, connect and push
        tool.CloseInput();
        await tool.WaitForEventAsync("connected");
        await server.SendToAllAsync("pushed after stdin ended");

        Assert.Equal(ExitCodes.TimedOut, await tool.Exit.WaitAsync(Bound));
        Assert.Contains("pushed after stdin ended", Messages(tool));
        Assert.Equal(1, server.CloseFramesReceived);
        Assert.Contains("--max-time 8 s reached", tool.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_Refused_WithRetries_GivesUp_Exit3()
    {
        var port = ClosedPort();
        await using var tool = ToolProcess.Start("connect", $"ws://127.0.0.1:{port}/", "-n", "-r", "2", "-j");

        Assert.Equal(ExitCodes.CouldNotConnect, await tool.Exit.WaitAsync(Bound));
        Assert.Equal(3, tool.JsonLines.Count(l => l.GetProperty("event").GetString() == "connecting"));
        Assert.Contains($"error: could not connect to ws://127.0.0.1:{port}/: --retries 2: gave up after 2 reconnect attempt(s) in a row", tool.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_PlainHttp200_IsNotRetried_Exit3()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/reject/200").ToString(), "-n");

        Assert.Equal(ExitCodes.CouldNotConnect, await tool.Exit.WaitAsync(Bound));
        Assert.Contains("the server answered HTTP 200 instead of upgrading to a WebSocket", tool.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_UnresolvableName_ReportedClearly_Exit3()
    {
        await using var tool = ToolProcess.Start("connect", "ws://no-such-host.invalid/", "-n");

        Assert.Equal(ExitCodes.CouldNotConnect, await tool.Exit.WaitAsync(Bound));
        Assert.Contains("error: could not connect to ws://no-such-host.invalid/: the host name could not be resolved", tool.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_ServerCloses1008_ClosedByPolicy_Exit4()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/close/1008").ToString(), "--no-stdin");

        Assert.Equal(ExitCodes.ClosedByPolicy, await tool.Exit.WaitAsync(Bound));
    }

    [Fact]
    public async Task Connect_HeadersSubprotocolOrigin_AreSentWithTheUpgrade()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/headers").ToString(), "-j",
            "-H", "X-Trace: abc 123", "--header", "Authorization: Bearer t0ken", "-s", "chat.v2", "--origin", "http://app.example");
        await tool.WaitForEventAsync("message");
        tool.CloseInput();

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        var headers = JsonDocument.Parse(Messages(tool).Single()).RootElement;
        Assert.Equal("abc 123", headers.GetProperty("x-trace").GetString());
        Assert.Equal("Bearer t0ken", headers.GetProperty("authorization").GetString());
        Assert.Equal("chat.v2", headers.GetProperty("sec-websocket-protocol").GetString());
        Assert.Equal("http://app.example", headers.GetProperty("origin").GetString());
    }

    [Theory]
    [InlineData("NoColon")]
    [InlineData("Sec-WebSocket-Key: x")]
    public async Task Connect_BadHeader_Exit2(string header)
    {
        var (exit, _, error) = await ToolProcess.RunAsync("connect", "ws://127.0.0.1:1/", "-H", header);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.StartsWith("error: --header", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_Binary_SendsLinesAsBinaryMessages()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/echo").ToString(), "-j", "-b");
        await tool.Input.WriteAsync("hello\n");
        tool.CloseInput();

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        Assert.Equal(["aGVsbG8="], Messages(tool)); // echoed back as binary, printed as base64
        // Before, nothing told it from a text message reading "aGVsbG8=".
        Assert.True(tool.JsonLines.Single(line => line.GetProperty("event").GetString() == "message").GetProperty("binary").GetBoolean());
    }

    [Fact]
    public async Task Connect_Insecure_IsLabelledOnStderr()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/echo").ToString(), "-k");
        tool.CloseInput();

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        Assert.StartsWith("warning: --insecure: TLS certificates are NOT checked", tool.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_UntrustedCertificate_StopsWithExit3NamingInsecure_AndInsecureConnects()
    {
        // Before, a certificate the machine does not trust was retried with backoff forever.
        using var certificate = Client.LifelineClientTlsTests.SelfSigned();
        var (started, port) = await Client.LifelineClientTlsTests.StartTlsEchoAsync(certificate);
        await using var app = started;
        var uri = $"wss://127.0.0.1:{port}/ws";

        await using (var refused = ToolProcess.Start("connect", "-n", uri))
        {
            Assert.Equal(ExitCodes.CouldNotConnect, await refused.Exit.WaitAsync(Bound));
            Assert.Contains("the TLS handshake failed", refused.Error, StringComparison.Ordinal);
            Assert.Contains("--insecure", refused.Error, StringComparison.Ordinal);
        }

        await using var tool = ToolProcess.Start("connect", uri, "-k", "-j");
        await tool.Input.WriteAsync("over tls\n");
        tool.CloseInput();
        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        Assert.Equal(["over tls"], Messages(tool));
    }

    private static List<string> Messages(ToolProcess tool) =>
        [.. tool.JsonLines.Where(l => l.GetProperty("event").GetString() == "message").Select(l => l.GetProperty("data").GetString()!)];

    /// <summary>Port 1 (tcpmux) is served nowhere; a port bound and released could be taken by a test alongside.</summary>
    private static int ClosedPort() => 1;
}
