using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Lifeline.Cli;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary>Bad values given to the real process: one explanation, the right exit code, never a stack trace.</summary>
[Collection(ToolProcessCollection.Name)]
public sealed partial class ProcessBadInputTests
{
    public static TheoryData<string, string[]> OutOfRange => new()
    {
        { "--keepalive", ["connect", "ws://127.0.0.1:1/", "--keepalive", "1e15"] },
        { "--keepalive-timeout", ["connect", "ws://127.0.0.1:1/", "--keepalive-timeout", "1e15"] },
        { "--keepalive", ["connect", "ws://127.0.0.1:1/", "--keepalive", "soon"] },
        { "--max-time", ["connect", "ws://127.0.0.1:1/", "--max-time", "1e15"] },
        { "--retries", ["connect", "ws://127.0.0.1:1/", "--retries", "1e15"] },
        { "--drain-timeout", ["serve", "--drain-timeout", "1e15"] },
        { "--hint-min", ["serve", "--hint-min", "1e15"] },
        { "--hint-max", ["serve", "--hint-max", "1e15"] },
        { "--max-connections", ["serve", "--max-connections", "1e15"] },
        { "--idle-cut", ["proxy", "--upstream", "127.0.0.1:1", "--idle-cut", "1e15"] },
        { "--latency", ["proxy", "--upstream", "127.0.0.1:1", "--latency", "1e15"] },
        { "--max", ["idle-scan", "ws://127.0.0.1:1/", "--max", "1e15"] },
        { "--parallel", ["idle-scan", "ws://127.0.0.1:1/", "--parallel", "many"] },
        { "--duration", ["probe", "ws://127.0.0.1:1/", "--duration", "1e15"] },

        // Below 100 ns a duration is zero ticks: these passed the parse and then failed in the settings with a .NET
        // message and "this is a bug".
        { "--drain-timeout", ["serve", "--drain-timeout", "1e-8"] },
        { "--timeout", ["probe", "ws://127.0.0.1:1/", "--timeout", "1e-8"] },
        { "--resolution", ["idle-scan", "ws://127.0.0.1:1/", "--resolution", "1e-8"] },
    };

    public static TheoryData<string[]> PortOutOfRange => new()
    {
        { new[] { "connect", "ws://127.0.0.1:99999/x" } },
        { new[] { "probe", "ws://127.0.0.1:99999/x" } },
        { new[] { "idle-scan", "ws://127.0.0.1:99999/x" } },
        { new[] { "proxy", "--upstream", "127.0.0.1:99999" } },
        { new[] { "serve", "--urls", "http://127.0.0.1:99999" } },

        // Port 0 is no server to reach: before, it was taken and replaced with 80 by the probe's raw socket.
        { new[] { "connect", "ws://127.0.0.1:0/x" } },
        { new[] { "probe", "ws://127.0.0.1:0/x" } },
        { new[] { "idle-scan", "ws://127.0.0.1:0/x" } },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public async Task OutOfRangeValue_ErrorNamesOptionAndRange_Exit2(string option, string[] args)
    {
        var (exit, _, error) = await ToolProcess.RunAsync(args);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Matches($@"^error: {Regex.Escape(option)} must be a (number of seconds|whole number)( from \S+ to|: 0, or from \S+ to) \d+.*, not \S+\.\n", error);
        Assert.Contains($"usage: run 'lifeline {args[0]} --help'", error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Theory]
    [MemberData(nameof(PortOutOfRange))]
    public async Task PortOutOfRange_SameWordsInEveryCommand_Exit2(string[] args)
    {
        var (exit, _, error) = await ToolProcess.RunAsync(args);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Matches("the port must be a whole number from 1 to 65535, not (99999|0)\\.", error);
        AssertNoCrash(error);
    }

    [Theory]
    [InlineData("https://127.0.0.1:0", ExitCodes.Usage, "https needs a server certificate")]
    [InlineData("http://localhost:0", ExitCodes.Usage, "port 0 (pick a free port) needs an IP address")]
    [InlineData("http://192.0.2.1:5000", ExitCodes.Failure, "error: --urls: cannot listen on http://192.0.2.1:5000")] // TEST-NET-1: on no machine
    [InlineData("http://x:0", ExitCodes.Usage, "give an IP address to listen on")] // Kestrel listened on every interface for it
    [InlineData("http://127.0.0.1:0/path", ExitCodes.Usage, "has no path, query or fragment")] // was Kestrel's exception, exit 1
    [InlineData("http://x@127.0.0.1:0", ExitCodes.Usage, "has no user name; give it as http://127.0.0.1:0")] // Kestrel listened on every interface for it
    [InlineData("http://@127.0.0.1:0", ExitCodes.Usage, "has no user name; give it as http://127.0.0.1:0")] // an empty one too
    public async Task Serve_UrlsItCannotUse_OneLineExplanation(string urls, int expected, string message)
    {
        var (exit, _, error) = await ToolProcess.RunAsync("serve", "--urls", urls);

        Assert.Equal(expected, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Fact]
    public async Task Serve_SessionFileWhereNothingCanBeWritten_Exit2()
    {
        // /proc takes no new files, root or not. Before, the start said sessions were saved there; the save at the stop
        // failed, and only a log this tool does not show said so.
        var (exit, _, error) = await ToolProcess.RunAsync("serve", "--urls", "http://127.0.0.1:0", "--session-file", "/proc/lifeline.sessions");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--session-file '/proc/lifeline.sessions' cannot be written", error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Fact]
    public async Task Serve_SessionFileIsADirectory_Exit2()
    {
        // Before, it started, said sessions were saved there, and at the stop saved nothing without a word.
        var (exit, _, error) = await ToolProcess.RunAsync("serve", "--urls", "http://127.0.0.1:0", "--session-file", Path.GetTempPath());

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("is a directory; give the path of a file", error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Fact]
    public async Task Serve_HintMinAboveHintMax_NamesTheOptions_Exit2()
    {
        // Before, the message named the server's properties: "RestartHintMin (00:00:05) must not exceed RestartHintMax (00:00:02)".
        var (exit, _, error) = await ToolProcess.RunAsync("serve", "--urls", "http://127.0.0.1:0", "--hint-min", "5", "--hint-max", "2");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.StartsWith("error: --hint-min (5 s) must not be above --hint-max (2 s);", error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    public static TheoryData<string[], string> BadHeaderParts => new()
    {
        // A line break in --origin was written into the probe's upgrade request as a header of its own.
        { new[] { "probe", "ws://127.0.0.1:1/", "--origin", "a\r\nX-Injected: 1" }, "--origin must not contain control characters" },
        { new[] { "connect", "ws://127.0.0.1:1/", "--origin", "a\nb" }, "--origin must not contain control characters" },
        { new[] { "connect", "ws://127.0.0.1:1/", "-H", "X-Trace: a\nb" }, "--header 'X-Trace' must not contain control characters" },
        { new[] { "connect", "ws://127.0.0.1:1/", "-s", "a b" }, "--subprotocol 'a b' is not a subprotocol name" }, // was exit 3, "could not connect"
        // These three were refused by the runtime at every connect attempt: the client retried for ever.
        { new[] { "connect", "ws://127.0.0.1:1/", "-H", "X(1): v" }, "--header 'X(1)' is not a header name" },
        { new[] { "connect", "ws://127.0.0.1:1/", "-H", "X-Name: Bücher" }, "--header 'X-Name' must be ASCII" },
        { new[] { "connect", "ws://127.0.0.1:1/", "--origin", "https://bücher.example" }, "--origin must be ASCII" },
        { new[] { "probe", "ws://127.0.0.1:1/", "-s", "a,b" }, "--subprotocol 'a,b' is not a subprotocol name" },
        // These two ended as "this is a bug in lifeline" (the client's constructor refused them).
        { new[] { "connect", "ws://127.0.0.1:1/", "--session", "-s", "lifeline.v1" }, "--session offers it already" },
        { new[] { "connect", "ws://127.0.0.1:1/", "-s", "chat", "-s", "Chat" }, "--subprotocol 'Chat' is given twice" },
    };

    [Theory]
    [MemberData(nameof(BadHeaderParts))]
    public async Task HeaderValuesAndSubprotocols_ThatWouldBreakTheRequest_Exit2(string[] args, string message)
    {
        var (exit, _, error) = await ToolProcess.RunAsync(args);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Fact]
    public async Task Proxy_ControlOnBusyPort_OneLineExplanation_Exit1()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port;

        var (exit, _, error) = await ToolProcess.RunAsync("proxy", "--upstream", "127.0.0.1:1", "--control", $"127.0.0.1:{port}");

        Assert.Equal(ExitCodes.Failure, exit);
        Assert.StartsWith($"error: --control: cannot listen on 127.0.0.1:{port}", error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Fact]
    public async Task Proxy_ControlOnAnAddressOfNoInterface_OneLineExplanation_Exit1()
    {
        // Binding fails here, before any packet: 192.0.2.1 (TEST-NET-1) is no address of this machine. Before, Kestrel's
        // bare SocketException ended as "this is a bug in lifeline".
        var (exit, _, error) = await ToolProcess.RunAsync("proxy", "--upstream", "127.0.0.1:1", "--control", "192.0.2.1:45678");

        Assert.Equal(ExitCodes.Failure, exit);
        Assert.StartsWith("error: --control: cannot listen on 192.0.2.1:45678", error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Fact]
    public async Task Proxy_JitterAboveTheLatency_OneLineError_Exit2()
    {
        var (exit, _, error) = await ToolProcess.RunAsync("proxy", "--upstream", "127.0.0.1:1", "--latency", "10", "--jitter", "20");

        // Before, the toxic's own two-line .NET message, "(Parameter 'jitter')" and "Actual value was".
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.StartsWith("error: the jitter (20 ms) must be at most the latency (10 ms)", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Parameter", error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Fact]
    public async Task Proxy_UpstreamGivenAsUrl_SaysHostPort_Exit2()
    {
        var (exit, _, error) = await ToolProcess.RunAsync("proxy", "--upstream", "ws://127.0.0.1:5000/ws");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("is a URL; give HOST:PORT such as 127.0.0.1:5000", error, StringComparison.Ordinal);
        AssertNoCrash(error);
    }

    [Fact]
    public async Task MistypedCommand_SuggestsTheClosest_Exit2()
    {
        var (exit, _, error) = await ToolProcess.RunAsync("conect", "ws://127.0.0.1:1/");

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("error: 'conect' is not a lifeline command.", error, StringComparison.Ordinal);
        Assert.Contains("did you mean 'lifeline connect'?", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_NamesTheToolLifeline_AndListsExitCodes()
    {
        var (exit, output, _) = await ToolProcess.RunAsync("--help");
        var (connectExit, connectHelp, _) = await ToolProcess.RunAsync("connect", "--help");

        Assert.Equal(0, exit);
        Assert.Contains("lifeline [command] [options]", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Lifeline.Cli", output, StringComparison.Ordinal);
        Assert.Contains("Exit codes:", output, StringComparison.Ordinal);
        foreach (var code in new[] { "0", "1", "2", "3", "4", "5", "130", "143" })
        {
            Assert.Matches($@"\n  {code} +\S", output);
        }

        Assert.Equal(0, connectExit);
        Assert.Contains("lifeline connect <url> [options]", connectHelp, StringComparison.Ordinal);
        Assert.Contains("Exit codes:", connectHelp, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Proxy_ControlCommandOutOfRange_On_Stdin_And_Http_Is400_ProxyKeepsRunning()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("proxy", "--upstream", $"127.0.0.1:{server.Port}", "--control", "127.0.0.1:0", "--json");
        await tool.WaitForOutputAsync("type 'help'");
        var proxyPort = int.Parse(ProxyPort().Match(tool.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var control = new Uri(ControlUrl().Match(tool.Output).Groups[1].Value);
        await using var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{proxyPort}/echo"));
        using var http = new HttpClient();

        await tool.Input.WriteLineAsync("idle-cut 1e15");
        await tool.Input.WriteLineAsync("latency 1e15");
        var response = await http.PostAsync(new Uri(control, "/command"), new StringContent("idle-cut 1e15"));
        var body = await response.Content.ReadAsStringAsync();
        await Wait.UntilAsync(() => Answers(tool).Length >= 2, TimeSpan.FromSeconds(20), "the answers on stdout");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("'1e15' is not a number of seconds from 0.001 to 86400 (one day).", body, StringComparison.Ordinal);
        Assert.All(Answers(tool), answer => Assert.StartsWith("error: '1e15' is not", answer, StringComparison.Ordinal));
        Assert.False(tool.Exit.IsCompleted, "the proxy died: " + tool.Error);
        await client.SendTextAsync("still linked");
        await Wait.UntilAsync(() => client.Messages.Contains("still linked"), TimeSpan.FromSeconds(20), "the echo through the proxy");
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(control, "/status"))).StatusCode);
        AssertNoCrash(tool.Error);
    }

    private static string[] Answers(ToolProcess tool) =>
        [.. ToolProcess.CompleteLines(tool.Output).Where(line => line.StartsWith('{'))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(l => l.GetProperty("event").GetString() == "control").Select(l => l.GetProperty("data").GetString()!)];

    private static void AssertNoCrash(string error)
    {
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", error, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", error, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"proxy listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ProxyPort();

    [GeneratedRegex(@"control on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ControlUrl();
}
