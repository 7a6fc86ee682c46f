using System.Net.WebSockets;
using System.Text.Json;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary>idle-scan against <c>lifeline serve</c> behind the fault proxy; serial because the answer is a time.</summary>
[Collection(SerialCollection.Name)]
public sealed class IdleScanCommandTests
{
    private static Task<JsonElement> ScanAsync(int proxyPort, params string[] args) => ScanPathAsync(proxyPort, "/ws", args);

    private static async Task<JsonElement> ScanPathAsync(int proxyPort, string path, params string[] args)
    {
        await using var cli = CliProcess.Start(string.Empty, ["idle-scan", $"ws://127.0.0.1:{proxyPort}{path}", "--json", .. args]);
        Assert.Equal(0, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(90)));
        Assert.Contains("round 1", cli.Error, StringComparison.Ordinal); // progress goes to stderr with --json
        return JsonDocument.Parse(cli.Output).RootElement.Clone();
    }

    [Theory]
    [InlineData(IdleCutKind.Fin, "fin")]
    [InlineData(IdleCutKind.Reset, "reset")]
    [InlineData(IdleCutKind.Silent, "silent")]
    [InlineData(IdleCutKind.ResetOnNextPacket, "reset")]
    public async Task IdleScan_ProxyCutsAfterThreeSeconds_FindsThreeSecondsAndTheKind(IdleCutKind kind, string expected)
    {
        var (serve, port) = await ServeProcess.StartAsync();
        await using var _ = serve;
        await using var proxy = new TcpFaultProxy("127.0.0.1", port).Start();
        proxy.SetIdleCut(TimeSpan.FromSeconds(3), kind);

        // A pong later than the pong timeout reads as a silent cut, so the test waits longer than the default 2 s: a cut
        // connection never answers, and a longer wait only makes the silent case slower to conclude.
        var result = await ScanAsync(proxy.EndPoint.Port, "--min", "1", "--max", "8", "--pong-timeout", "4");

        Assert.True(result.GetProperty("found").GetBoolean(), result.ToString());
        // The proxy's idle clock starts when it forwards the upgrade response, the scan's silence once it has read it:
        // on a loaded machine the scan starts late and its silences read short. A full CI run once measured 2.2 s
        // (survived 2 s, cut at 2.4 s, "silent") for this 3 s cut. A loaded machine may also notice a cut late. The
        // bounds allow both, yet a scan that measured the wrong thing (the 1 or 8 s steps) still fails.
        var timeout = result.GetProperty("idleTimeoutSeconds").GetDouble();
        Assert.True(timeout is > 2.0 and <= 7.5, result.ToString());
        Assert.True(expected == result.GetProperty("killedBy").GetString(), result.ToString());
        Assert.True(result.GetProperty("longestSurvivedSeconds").GetDouble() <= timeout, "a silence longer than the measured timeout cannot have survived");

        // A reset that answers the scan's ping after the silence is not timed by its arrival: before, the scan stopped
        // after one round and gave the length of that silence (4 s of the 1, 2, 4, 8 s steps) as the timeout.
        Assert.True((kind == IdleCutKind.ResetOnNextPacket) == result.GetProperty("cutOnNextPacket").GetBoolean(), result.ToString());
        if (kind == IdleCutKind.ResetOnNextPacket)
        {
            Assert.True(result.GetProperty("rounds").GetInt32() >= 2, result.ToString());
            Assert.True(timeout < result.GetProperty("shortestKilledSeconds").GetDouble(), result.ToString());
        }
        Assert.Contains("keep-alive", result.GetProperty("advice").GetString(), StringComparison.Ordinal);

        // The connection the scan keeps busy (a ping every 0.25 s) goes through the same proxy and is never idle: an idle
        // cut leaves it alone, so the cut reads as an idle timeout, not as a lifetime.
        Assert.False(result.GetProperty("cutDespiteTraffic").GetBoolean(), result.ToString());
        Assert.True(result.GetProperty("busyConnectionCutAfterSeconds").ValueKind == JsonValueKind.Null, result.ToString());
        Assert.Equal(0.25, result.GetProperty("busyPingSeconds").GetDouble());
    }

    [Fact]
    public async Task IdleScan_AnEndpointThatStreams_SaysThePathWasNotIdle()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        await using var _ = serve;
        await using var proxy = new TcpFaultProxy("127.0.0.1", port).Start();
        proxy.SetIdleCut(TimeSpan.FromSeconds(2), IdleCutKind.Fin);

        var result = await ScanPathAsync(proxy.EndPoint.Port, "/stream?interval=300", "--min", "1", "--max", "3", "--pong-timeout", "4");

        // Before: "none up to --max ... a keep-alive interval below that is safe", though the stream kept the path busy
        // and the 2 s idle cut never had a chance to show.
        Assert.True(result.GetProperty("serverMessages").GetInt32() > 0, result.ToString());
        Assert.Contains("so the path was not idle", result.GetProperty("advice").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdleScan_ASilentCutShorterThanMin_SaysAtMostMin_NotMinAsTheTimeout()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        await using var _ = serve;
        await using var proxy = new TcpFaultProxy("127.0.0.1", port).Start();
        // The scan's busy connection pings every --min / 4 = 2 s: far inside the 6 s cut, even on a loaded machine.
        proxy.SetIdleCut(TimeSpan.FromSeconds(6), IdleCutKind.Silent);

        var result = await ScanAsync(proxy.EndPoint.Port, "--min", "8", "--max", "10", "--pong-timeout", "4");

        // Before: "idle timeout: about 8 s" and pings every 4 s advised; against a 6 s cut that is barely enough.
        Assert.True(result.GetProperty("found").GetBoolean(), result.ToString());
        Assert.Equal(JsonValueKind.Null, result.GetProperty("idleTimeoutSeconds").ValueKind);
        Assert.Equal(8, result.GetProperty("shortestKilledSeconds").GetDouble());
        Assert.True(result.GetProperty("advice").GetString()!.Contains("or less", StringComparison.Ordinal), result.ToString());
        Assert.Contains("lower --min", result.GetProperty("advice").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdleScan_ServerEndsEveryConnectionAfterTwoSeconds_SaysItIsALifetimeNotAnIdleTimeout()
    {
        // Before, a server (or load balancer) that ends each connection a fixed time after it opened, whatever its traffic,
        // read as an idle timeout, with the advice to send keep-alive pings, which cannot help there.
        var (result, progress) = await ScanAsync("/lifetime/2000");
        Assert.True(result.GetProperty("found").GetBoolean(), result.ToString());
        Assert.True(result.GetProperty("cutDespiteTraffic").GetBoolean(), result.ToString());
        var busyCut = result.GetProperty("busyConnectionCutAfterSeconds").GetDouble();
        Assert.True(busyCut is >= 1.5 and <= 7.5, result.ToString()); // its pings were answered until the 2 s lifetime ended it
        Assert.Contains("keep-alive pings will not prevent it", result.GetProperty("advice").GetString(), StringComparison.Ordinal);
        Assert.Contains("kept busy with pings was cut too", progress, StringComparison.Ordinal); // the progress line
    }

    [Fact]
    public async Task IdleScan_ServerClosesEveryConnectionWith1008AfterThreeSeconds_AdviceNamesThePolicyNotAnIdleTimeout()
    {
        // A 1008 a fixed time after the upgrade is most likely the server's own verdict (a token checked again, say),
        // which pings do not cure; before, the advice offered only a longer limit or heartbeat messages.
        var (result, _) = await ScanAsync("/lifetime/3000/close/1008");
        Assert.True(result.GetProperty("cutDespiteTraffic").GetBoolean(), result.ToString());
        Assert.Equal(1008, result.GetProperty("closeCode").GetInt32());
        var advice = result.GetProperty("advice").GetString()!;
        Assert.Contains("Close frame with 1008 (Policy Violation)", advice, StringComparison.Ordinal);
        var credential = advice.IndexOf("credential", StringComparison.Ordinal);
        Assert.True(credential >= 0 && credential < advice.IndexOf("heartbeat", StringComparison.Ordinal), advice); // the likelier cause first
    }

    /// <summary>Scans a path of a <see cref="TestWebSocketServer"/> from 0.5 s to 8 s; returns the JSON result and the progress lines.</summary>
    private static async Task<(JsonElement Result, string Progress)> ScanAsync(string path)
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var cli = CliProcess.Start(string.Empty, ["idle-scan", $"ws://127.0.0.1:{server.Port}{path}", "--json", "--min", "0.5", "--max", "8"]);
        Assert.Equal(0, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(90)));
        return (JsonDocument.Parse(cli.Output).RootElement.Clone(), cli.Error);
    }

    [Fact]
    public async Task IdleScan_RefusedAfterTheFirstRound_ReportsWhatItMeasuredAndExits1()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        await using var _ = serve;
        await using var proxy = new TcpFaultProxy("127.0.0.1", port).Start();
        proxy.SetIdleCut(TimeSpan.FromSeconds(3), IdleCutKind.Silent); // a silent cut needs a second round to narrow
        await using var cli = CliProcess.Start(string.Empty, ["idle-scan", $"ws://127.0.0.1:{proxy.EndPoint.Port}/ws", "--json", "--min", "1", "--max", "8", "--pong-timeout", "4"]);
        await Wait.UntilAsync(() => proxy.AcceptedCount >= 4, TimeSpan.FromSeconds(30), "round 1's four connections");

        proxy.RefuseConnections(); // round 2 cannot connect

        Assert.Equal(1, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(90)));
        Assert.Contains("error: cannot connect", cli.Error, StringComparison.Ordinal);
        // Before, everything round 1 measured was thrown away: stdout stayed empty.
        var result = JsonDocument.Parse(cli.Output).RootElement;
        Assert.False(string.IsNullOrEmpty(result.GetProperty("failure").GetString()), result.ToString());
        Assert.False(result.GetProperty("found").GetBoolean(), "a scan that stopped early gives no answer, only what it measured"); // no midpoint taken as the timeout
        Assert.True(result.GetProperty("longestSurvivedSeconds").GetDouble() >= 1, result.ToString());
        Assert.Equal(JsonValueKind.Number, result.GetProperty("shortestKilledSeconds").ValueKind);
        Assert.StartsWith("scan stopped early", result.GetProperty("advice").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdleScan_NothingListens_Json_StillPrintsOneDocumentWithTheFailure()
    {
        // Before, --json printed nothing at all when no connection opened: a script reading stdout got no document.
        await using var cli = CliProcess.Start(string.Empty, ["idle-scan", "ws://127.0.0.1:1/ws", "--json", "--min", "1", "--max", "4"]); // port 1: nothing listens

        Assert.Equal(1, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("error: cannot connect", cli.Error, StringComparison.Ordinal);
        var result = JsonDocument.Parse(cli.Output).RootElement;
        Assert.False(result.GetProperty("found").GetBoolean(), result.ToString());
        Assert.Equal("tcp", result.GetProperty("failedStage").GetString());
        Assert.Contains("connection refused", result.GetProperty("failure").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, result.GetProperty("idleTimeoutSeconds").ValueKind);
        Assert.StartsWith("cannot scan: no connection could be opened", result.GetProperty("advice").GetString(), StringComparison.Ordinal); // not "run it again"
    }

    [Fact]
    public async Task IdleScan_ServerClosesEveryConnectionAtOnce_SaysSoAndExits1()
    {
        // The server is full: it accepts each upgrade and closes with 1013 at once. Before, the scan took that for an idle
        // timeout of about 0 s and advised keep-alive pings every 0.5 s.
        var (serve, port) = await ServeProcess.StartAsync("--max-connections", "1");
        await using var _ = serve;
        using var holder = new ClientWebSocket();
        await holder.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws"), CancellationToken.None);

        await using var cli = CliProcess.Start(string.Empty, ["idle-scan", $"ws://127.0.0.1:{port}/ws", "--json", "--min", "1", "--max", "4"]);

        Assert.Equal(1, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("does not hold the connection", cli.Error, StringComparison.Ordinal);
        Assert.Contains("1013", cli.Error, StringComparison.Ordinal);
        var result = JsonDocument.Parse(cli.Output).RootElement;
        Assert.False(result.GetProperty("found").GetBoolean(), result.ToString());
        Assert.Equal(JsonValueKind.Null, result.GetProperty("idleTimeoutSeconds").ValueKind);
        Assert.Equal("ping", result.GetProperty("failedStage").GetString());
        Assert.StartsWith("cannot scan", result.GetProperty("advice").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdleScan_NoCut_ReportsNoneUpToMax()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        await using var _ = serve;
        await using var proxy = new TcpFaultProxy("127.0.0.1", port).Start();

        var result = await ScanAsync(proxy.EndPoint.Port, "--min", "0.5", "--max", "2", "--pong-timeout", "10"); // a slow pong is not a cut

        Assert.False(result.GetProperty("found").GetBoolean());
        Assert.Equal(JsonValueKind.Null, result.GetProperty("idleTimeoutSeconds").ValueKind);
        Assert.Equal(2, result.GetProperty("longestSurvivedSeconds").GetDouble());
        Assert.StartsWith("none up to --max", result.GetProperty("advice").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--max", "1")]
    [InlineData("--min", "0.1")]
    [InlineData("--parallel", "0")]
    public async Task IdleScan_BadBounds_ExitCode2WithTheReason(string option, string value)
    {
        await using var cli = CliProcess.Start(string.Empty, "idle-scan", "ws://127.0.0.1:1/ws", "--min", "5", option, value);

        Assert.Equal(2, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains(option, cli.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdleScan_Unreachable_FailsClearly()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var port = server.Port;
        await server.StopAsync();
        await using var cli = CliProcess.Start(string.Empty, "idle-scan", $"ws://127.0.0.1:{port}/ws", "--min", "1", "--max", "2");

        Assert.Equal(1, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("connection refused", cli.Error, StringComparison.Ordinal);
    }
}
