using System.Diagnostics;
using System.Text.Json;
using Lifeline.FaultProxy;
using Lifeline.FaultProxy.Toxics;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

public sealed class ProbeCommandTests
{
    private static async Task<(int Exit, JsonElement Report, CliProcess Cli)> ProbeAsync(params string[] args)
    {
        var cli = CliProcess.Start(string.Empty, ["probe", .. args, "--json"]);
        var exit = await cli.Exit.WaitAsync(TimeSpan.FromSeconds(30));
        return (exit, JsonDocument.Parse(cli.Output).RootElement.Clone(), cli);
    }

    [Fact]
    public async Task Probe_LifelineServe_ReportsEveryField()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        await using var serveScope = serve;

        var (exit, report, cli) = await ProbeAsync($"ws://127.0.0.1:{port}/ws", "--pings", "3", "--duration", "0.5", "--subprotocol", "lifeline.test");
        await using var __ = cli;

        Assert.Equal(0, exit);
        Assert.Equal("127.0.0.1", report.GetProperty("addresses")[0].GetString());
        Assert.Equal($"127.0.0.1:{port}", report.GetProperty("remote").GetString());
        foreach (var timing in new[] { "dnsMs", "tcpMs", "upgradeMs" })
        {
            Assert.True(report.GetProperty(timing).GetDouble() >= 0, timing);
        }

        Assert.Equal(JsonValueKind.Null, report.GetProperty("tlsMs").ValueKind);
        Assert.Equal(101, report.GetProperty("status").GetInt32());
        Assert.Equal("websocket", report.GetProperty("headers").GetProperty("Upgrade").GetString());
        Assert.True(report.GetProperty("headers").TryGetProperty("Sec-WebSocket-Accept", out _));
        Assert.Equal("lifeline.test", report.GetProperty("subprotocol").GetString());
        Assert.Equal(JsonValueKind.Null, report.GetProperty("extensions").ValueKind);
        Assert.Equal(3, report.GetProperty("pingsMs").GetArrayLength());
        Assert.Equal(0, report.GetProperty("pingsLost").GetInt32());
        Assert.Equal("still-open", report.GetProperty("end").GetProperty("kind").GetString());
    }

    [Fact]
    public async Task Probe_TextOutput_NamesEveryStep()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        await using var serveScope = serve;
        await using var cli = CliProcess.Start(string.Empty, "probe", $"ws://127.0.0.1:{port}/ws", "--pings", "2", "--duration", "0.2");

        Assert.Equal(0, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        foreach (var label in new[] { "dns", "tcp", "tls", "upgrade", "status", "subprotocol", "extensions", "pings", "min/avg/max", "ended" })
        {
            Assert.Contains(label, cli.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Probe_TextOutput_NoPingsAsked_SaysNoneSent()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var cli = CliProcess.Start(string.Empty, "probe", server.Uri("/echo").ToString(), "--pings", "0", "--duration", "0");

        Assert.Equal(0, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("none sent", cli.Output, StringComparison.Ordinal); // before: "none answered", as if they were lost
        Assert.DoesNotContain("none answered", cli.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_ClosedPort_SaysConnectionRefused()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var port = server.Port;
        await server.StopAsync();

        var (exit, report, cli) = await ProbeAsync($"ws://127.0.0.1:{port}/ws");
        await using var _ = cli;

        Assert.Equal(1, exit);
        Assert.Equal("tcp", report.GetProperty("failedStage").GetString());
        Assert.Contains("connection refused", report.GetProperty("cause").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_PlainHttpEndpoint_SaysItIsNotAWebSocketEndpoint()
    {
        await using var host = await LifelineTestHost.StartAsync();

        var (exit, report, cli) = await ProbeAsync($"ws://127.0.0.1:{host.Port}/health");
        await using var _ = cli;

        Assert.Equal(1, exit);
        Assert.Equal(200, report.GetProperty("status").GetInt32());
        Assert.Contains("not a WebSocket endpoint", report.GetProperty("cause").GetString(), StringComparison.Ordinal);
        Assert.Contains("ready", report.GetProperty("bodyStart").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_MissingPath_Says404()
    {
        await using var host = await LifelineTestHost.StartAsync();

        var (exit, report, cli) = await ProbeAsync($"ws://127.0.0.1:{host.Port}/nothing-here");
        await using var _ = cli;

        Assert.Equal(1, exit);
        Assert.Equal(404, report.GetProperty("status").GetInt32());
        Assert.Contains("no endpoint at this path", report.GetProperty("cause").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_ServerClosingWith1008_NamesTheCodeAndItsMeaning()
    {
        await using var server = await TestWebSocketServer.StartAsync();

        var (exit, report, cli) = await ProbeAsync(server.Uri("/close/1008?reason=token%20expired").ToString(), "--pings", "0", "--duration", "5");
        await using var _ = cli;

        Assert.Equal(0, exit);
        var end = report.GetProperty("end");
        Assert.Equal("close-frame", end.GetProperty("kind").GetString());
        Assert.Equal(1008, end.GetProperty("code").GetInt32());
        Assert.Equal("token expired", end.GetProperty("reason").GetString());
        Assert.Equal("Policy Violation", end.GetProperty("codeName").GetString());
        Assert.Contains("policy", end.GetProperty("meaning").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Probe_ServerDropsTheLink_ReportsResetAs1006()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        proxy.SetIdleCut(TimeSpan.FromSeconds(1.5), IdleCutKind.Reset); // longer than a slow upgrade, shorter than --duration

        var (exit, report, cli) = await ProbeAsync($"ws://127.0.0.1:{proxy.EndPoint.Port}/echo", "--pings", "0", "--duration", "5");
        await using var _ = cli;

        Assert.Equal(0, exit);
        Assert.Equal("reset", report.GetProperty("end").GetProperty("kind").GetString());
        Assert.Equal(1006, report.GetProperty("end").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Probe_LinkDroppedSilentlyDuringTheWatch_ReportsASilentDrop()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        proxy.SetIdleCut(TimeSpan.FromSeconds(1.5), IdleCutKind.Silent); // like a load balancer that forgets the flow without a word

        var (exit, report, cli) = await ProbeAsync($"ws://127.0.0.1:{proxy.EndPoint.Port}/echo", "--pings", "0", "--duration", "4");
        await using var _ = cli;

        // Before, a watch that heard nothing reported the connection as still open and closed by the probe.
        Assert.Equal(0, exit);
        Assert.Equal("silent", report.GetProperty("end").GetProperty("kind").GetString());
        Assert.Equal(1006, report.GetProperty("end").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Probe_NoAnswer_GivesUpWithinTheTimeout()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", server.Port).Start();
        proxy.AddToxic(new BlackHoleToxic());

        var watch = Stopwatch.StartNew();
        var (exit, report, cli) = await ProbeAsync($"ws://127.0.0.1:{proxy.EndPoint.Port}/echo", "--timeout", "1");
        await using var _ = cli;

        Assert.Equal(1, exit);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15));
        Assert.Contains("no answer within 1 s", report.GetProperty("cause").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_RefusalWithARepeatedHeader_ReportsBothValues()
    {
        // A hand-written HTTP server on loopback: 403 with Set-Cookie twice, as real servers send.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var serving = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var request = new byte[4096];
            await stream.ReadAtLeastAsync(request, 4, throwOnEndOfStream: false);
            await stream.WriteAsync("HTTP/1.1 403 Forbidden\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
        });

        var (exit, report, cli) = await ProbeAsync($"ws://127.0.0.1:{port}/ws");
        await using var scope = cli;
        await serving.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(1, exit);
        Assert.Equal(403, report.GetProperty("status").GetInt32());
        Assert.Equal("a=1, b=2", report.GetProperty("headers").GetProperty("Set-Cookie").GetString());
        Assert.Contains("Origin check", report.GetProperty("cause").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not a url")]
    [InlineData("http://127.0.0.1/ws")]
    [InlineData("ws://")]
    public async Task Probe_MalformedUrl_ExitCode2(string url)
    {
        await using var cli = CliProcess.Start(string.Empty, "probe", url);

        Assert.Equal(2, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("not a WebSocket URL", cli.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_BadOption_ExitCode2()
    {
        await using var cli = CliProcess.Start(string.Empty, "probe", "ws://127.0.0.1:1/", "--timeout", "0");

        Assert.Equal(2, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("--timeout", cli.Error, StringComparison.Ordinal);
    }
}
