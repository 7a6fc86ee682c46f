using System.Text.Json;
using System.Text.RegularExpressions;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

public sealed partial class ProxyCommandTests
{
    private static async Task<(CliProcess Cli, int ProxyPort, Uri Control)> StartProxyAsync(int upstreamPort, string input = "", params string[] extra)
    {
        var cli = CliProcess.Start(input, ["proxy", "--upstream", $"127.0.0.1:{upstreamPort}", "--control", "127.0.0.1:0", .. extra]);
        await Wait.UntilAsync(() => ControlLine().IsMatch(cli.Output) || cli.Exit.IsCompleted, what: "the proxy to start");
        Assert.False(cli.Exit.IsCompleted, "the proxy exited: " + cli.Error);
        var proxyPort = int.Parse(ListenLine().Match(cli.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        return (cli, proxyPort, new Uri(ControlLine().Match(cli.Output).Groups[1].Value));
    }

    private static async Task<(int Status, string Body)> CommandAsync(HttpClient http, Uri control, string command)
    {
        var response = await http.PostAsync(new Uri(control, "/command"), new StringContent(command));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Proxy_FaultsSwitchedOverHttp_TakeEffectOnLiveLinks()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, proxyPort, control) = await StartProxyAsync(server.Port);
        await using var _ = cli;
        using var http = new HttpClient();
        await using var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{proxyPort}/echo"));
        await client.SendTextAsync("one");
        await Wait.UntilAsync(() => client.Messages.Contains("one"));

        Assert.Equal((200, "ok blackhole on"), await CommandAsync(http, control, "blackhole on"));
        await client.SendTextAsync("swallowed");
        await Task.Delay(300); // absence of a message: nothing to wait on
        Assert.DoesNotContain("swallowed", server.Received);

        Assert.Equal((200, "ok blackhole off"), await CommandAsync(http, control, "blackhole off"));
        await client.SendTextAsync("two");
        await Wait.UntilAsync(() => client.Messages.Contains("two"));

        var status = JsonDocument.Parse(await http.GetStringAsync(new Uri(control, "/status"))).RootElement;
        Assert.Equal(1, status.GetProperty("links").GetInt32());

        Assert.Equal(200, (await CommandAsync(http, control, "reset")).Status);
        var close = await client.Closed.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Null(close.Code); // no Close frame: the client sees 1006
        await Wait.UntilAsync(() => cli.Output.Contains("link-ended", StringComparison.Ordinal), what: "the link-ended event");
    }

    [Fact]
    public async Task Proxy_UnknownOrBadCommand_Gets400WithHelp_AndKeepsRunning()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, _, control) = await StartProxyAsync(server.Port);
        await using var scope = cli;
        using var http = new HttpClient();

        var unknown = await CommandAsync(http, control, "explode");
        var bad = await CommandAsync(http, control, "latency fast");

        Assert.Equal(400, unknown.Status);
        Assert.Contains("unknown command 'explode'", unknown.Body, StringComparison.Ordinal);
        Assert.Contains("blackhole on|off", unknown.Body, StringComparison.Ordinal);
        Assert.Equal(400, bad.Status);
        Assert.Contains("'fast' is not a positive whole number", bad.Body, StringComparison.Ordinal);
        Assert.Equal(200, (await CommandAsync(http, control, "latency 10 5")).Status);
        Assert.False(cli.Exit.IsCompleted);
    }

    [Fact]
    public async Task Proxy_LatencyWithoutJitter_StartsAndForwards()
    {
        // Before, --latency alone became "latency MS 0", and a jitter of 0 was refused: the proxy exited with 2.
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, proxyPort, control) = await StartProxyAsync(server.Port, "", "--latency", "20");
        await using var scope = cli;
        using var http = new HttpClient();

        await using var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{proxyPort}/echo"));
        await client.SendTextAsync("through");
        await Wait.UntilAsync(() => client.Messages.Contains("through"));
        var status = JsonDocument.Parse(await http.GetStringAsync(new Uri(control, "/status"))).RootElement;
        Assert.Equal(["latency"], status.GetProperty("faults").EnumerateArray().Select(f => f.GetString()));
    }

    [Theory]
    [InlineData("latency 100 0", "ok latency on")]
    [InlineData("slice 10 0", "ok slice on")]
    public async Task Proxy_ZeroJitterOrSliceDelay_IsAccepted(string command, string answer)
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, _, control) = await StartProxyAsync(server.Port);
        await using var scope = cli;
        using var http = new HttpClient();

        Assert.Equal((200, answer), await CommandAsync(http, control, command));
    }

    [Theory]
    [InlineData("blackhole on now")]
    [InlineData("reset 1 2")]
    [InlineData("refuse 5 x")]
    [InlineData("latency 10 5 junk")]
    [InlineData("status please")]
    public async Task Proxy_CommandWithWordsItDoesNotTake_Gets400(string command)
    {
        // Before, the extra words were ignored: "blackhole on now" answered "ok", as if understood.
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, _, control) = await StartProxyAsync(server.Port);
        await using var scope = cli;
        using var http = new HttpClient();

        var (status, body) = await CommandAsync(http, control, command);

        Assert.Equal(400, status);
        Assert.Contains("too many words", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Proxy_StdinCommands_AreAnswered()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, _, _) = await StartProxyAsync(server.Port, "idle-cut 2 fin\nstatus\nidle-cut 3 reset-on-next\nlinks\n", "--json");
        await using var scope = cli;

        await Wait.UntilAsync(() => ToolProcess.CompleteLines(cli.Output).Any(line => line.Contains("reset-on-next", StringComparison.Ordinal)), what: "the answers");
        var answers = ToolProcess.CompleteLines(cli.Output).Where(line => line.StartsWith('{'))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(e => e.GetProperty("event").GetString() == "control")
            .Select(e => e.GetProperty("data").GetString()!)
            .ToArray();
        Assert.Equal("ok idle-cut 2 s fin", answers[0]);
        var status = JsonDocument.Parse(answers[1]).RootElement;
        Assert.Equal(2, status.GetProperty("idleCut").GetProperty("seconds").GetDouble());
        Assert.Equal("fin", status.GetProperty("idleCut").GetProperty("kind").GetString());
        Assert.Equal("ok idle-cut 3 s reset-on-next", answers[2]); // named as it is typed
    }

    [Fact]
    public async Task Proxy_WhileNobodyReadsItsOutput_GoesOnForwarding_AndItsLinesComeAfterInOrder()
    {
        // A script that starts the proxy and never reads its stdout fills the pipe. Before, each link wrote its
        // link-opened line before forwarding anything, so with stdout full no new link forwarded a byte (the connect
        // below timed out) and the threads writing piled up.
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, proxyPort, control) = await StartProxyAsync(server.Port, "", "--json");
        await using var scope = cli;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        const int links = 3;
        cli.StallOutput();
        try
        {
            for (var i = 0; i < links; i++)
            {
                await using var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{proxyPort}/echo"));
                await client.SendTextAsync($"through {i}");
                await Wait.UntilAsync(() => client.Messages.Contains($"through {i}"), what: "the echo through the proxy");
            }

            var status = JsonDocument.Parse(await http.GetStringAsync(new Uri(control, "/status"))).RootElement;
            Assert.Equal(links, status.GetProperty("accepted").GetInt32());
        }
        finally
        {
            cli.ResumeOutput();
        }

        // The lines waiting meanwhile come out once stdout is read again: every link's opening, then its end.
        await Wait.UntilAsync(() => cli.JsonLines.Count(e => e.GetProperty("event").GetString() == "link-ended") == links, what: "the links' lines");
        var lines = cli.JsonLines.Where(e => e.GetProperty("event").GetString() is "link-opened" or "link-ended")
            .Select(e => (Event: e.GetProperty("event").GetString()!, Link: LinkId().Match(e.GetProperty("data").GetString()!).Groups[1].Value))
            .ToList();
        Assert.Equal(2 * links, lines.Count);
        foreach (var link in lines.Select(l => l.Link).Distinct())
        {
            Assert.Equal(["link-opened", "link-ended"], lines.Where(l => l.Link == link).Select(l => l.Event));
        }
    }

    [Fact]
    public async Task Proxy_CtrlCWithALinkOpen_PrintsThatLinksEnd()
    {
        // The links the proxy ends when it stops raise link-ended then: the queue their lines go through must still be
        // taking lines (it was closed first for a while, and those lines were dropped).
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, proxyPort, _) = await StartProxyAsync(server.Port, "", "--json");
        await using var scope = cli;
        await using var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{proxyPort}/echo"));
        await client.SendTextAsync("open");
        await Wait.UntilAsync(() => client.Messages.Contains("open"), what: "the echo through the proxy");

        cli.Interrupt();

        Assert.Equal(0, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(cli.JsonLines, e => e.GetProperty("event").GetString() == "link-ended");
        Assert.DoesNotContain(cli.JsonLines, e => e.GetProperty("event").GetString() == "events-dropped");
    }

    [Fact]
    public async Task Proxy_StartupFlags_ApplyIdleCut()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        var (cli, proxyPort, _) = await StartProxyAsync(server.Port, "", "--idle-cut", "2", "--idle-cut-kind", "fin"); // longer than a slow upgrade
        await using var scope = cli;

        await using var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{proxyPort}/echo"));
        var close = await client.Closed.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Null(close.Code);
    }

    [Theory]
    [InlineData("--upstream", "127.0.0.1")]
    [InlineData("--upstream", "127.0.0.1:99999")]
    [InlineData("--upstream", "[::1")] // accepted before: it connected every link to the host "[:" on port 1
    [InlineData("--upstream", "[::1]")]
    [InlineData("--upstream", "::1:5000")] // IPv6 without brackets: which colon starts the port?
    [InlineData("--upstream", ":5000")]
    [InlineData("--upstream", "[nohost]:5000")]
    [InlineData("--upstream", "a b:5000")]
    [InlineData("--upstream", "[fe80::1%nosuch0]:5000")]
    [InlineData("--listen", "nowhere:80")]
    [InlineData("--listen", "[::1:80")]
    [InlineData("--idle-cut-kind", "explode")]
    public async Task Proxy_BadOptions_ExitCode2(string option, string value)
    {
        string[] args = option == "--upstream"
            ? ["proxy", "--upstream", value]
            : ["proxy", "--upstream", "127.0.0.1:1", option, value, "--idle-cut", "1"];
        await using var cli = CliProcess.Start(string.Empty, args);

        Assert.Equal(2, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.StartsWith("error:", cli.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Proxy_JitterWithoutLatency_ExitCode2()
    {
        // Before, --jitter alone was ignored without a word.
        await using var cli = CliProcess.Start(string.Empty, "proxy", "--upstream", "127.0.0.1:1", "--jitter", "5");

        Assert.Equal(2, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.StartsWith("error: --jitter needs --latency", cli.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("explode")]
    [InlineData("fin")]
    public async Task Proxy_IdleCutKindWithoutIdleCut_ExitCode2(string kind)
    {
        // Before, the kind was checked (and used) only with --idle-cut: alone, even a bad one was accepted silently.
        await using var cli = CliProcess.Start(string.Empty, "proxy", "--upstream", "127.0.0.1:1", "--idle-cut-kind", kind);

        Assert.Equal(2, await cli.Exit.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.StartsWith("error: --idle-cut-kind needs --idle-cut", cli.Error, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"control on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ControlLine();

    [GeneratedRegex(@"^link (\d+)")]
    private static partial Regex LinkId();

    [GeneratedRegex(@"proxy listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListenLine();
}
