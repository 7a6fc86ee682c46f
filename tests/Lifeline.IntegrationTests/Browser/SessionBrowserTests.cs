using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Protocol;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Lifeline.IntegrationTests.Browser;

/// <summary>
/// <c>lifeline serve</c>'s page in session mode (<c>lifeline.v1</c>), in headless Chromium, its sockets through the
/// fault proxy: numbers both ways (the page's "ping N" echoed by <c>/ws</c>, the server's <c>/stream</c>) through a
/// SIGTERM restart of a real serve process (1012, sessions resumed from the drain file by the next process on the same
/// port) and through a reset of every link (1006). Everything is read from <c>window.__lifeline</c>, not from pixels.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed partial class SessionBrowserTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task SessionPage_SigtermRestartThenLinkReset_EveryNumberOnceAndInOrderBothWays_AndLogged()
    {
        var sessionFile = Path.Combine(Path.GetTempPath(), $"lifeline-browser-{Guid.NewGuid():N}.sessions");
        ToolProcess? first = null;
        ToolProcess? second = null;
        TcpFaultProxy? proxy = null;
        var (playwright, browser) = await Chromium.LaunchAsync();
        try
        {
            string[] hints = ["--hint-min", "1", "--hint-max", "2"];
            first = ToolProcess.Start(["serve", "--urls", $"http://127.0.0.1:{LoopbackPorts.ForRestartableServer()}", "--session-file", sessionFile, .. hints]);
            await first.WaitForOutputAsync("press Ctrl-C", Bound);
            var port = int.Parse(Listening().Match(first.Output).Groups[1].Value, CultureInfo.InvariantCulture);
            proxy = new TcpFaultProxy("127.0.0.1", port).Start();

            // The page, and so both of its sockets, comes through the proxy: its host is the proxy's.
            var page = await browser.NewPageAsync();
            await page.GotoAsync($"http://127.0.0.1:{proxy.EndPoint.Port}/?session=1&every=50&stream=50");
            // 40 messages: up 2 s, so the 1012 below ends a link that counts as a success (attempt 1; see the stable period).
            await WaitAsync(page, "s.echo.opens.length === 1 && s.stream.opens.length === 1 && s.echo.received.length >= 40 && s.stream.received.length >= 40");

            // 1. The graceful restart: SIGTERM, 1012 with a hint, sessions saved; a new process on the same port loads them.
            first.Signal(ToolProcess.SIGTERM);
            await WaitAsync(page, "s.echo.closes.length >= 1 && s.stream.closes.length >= 1");
            Assert.Equal(0, await first.Exit.WaitAsync(Bound));
            Assert.Contains("draining 2 connections", first.Output, StringComparison.Ordinal);
            Assert.True(File.Exists(sessionFile), "the drain wrote no session file: " + first.Output);
            var before = await ReadAsync(page);
            second = ToolProcess.Start(["serve", "--urls", $"http://127.0.0.1:{port}", "--session-file", sessionFile, .. hints]);
            await second.WaitForOutputAsync("press Ctrl-C", Bound);
            // 40 messages at one per 50 ms: the resumed links are up 2 s, past a tenth of the stable period (1 s), so the
            // reset below finds a link that counts as a success and the next attempt is attempt 1.
            await WaitAsync(page, $"s.echo.resumed.length === 1 && s.stream.resumed.length === 1 && s.echo.received.length >= {Count(before, "echo") + 40} && s.stream.received.length >= {Count(before, "stream") + 40}");

            // 2. A link drop: the proxy resets every link, the browser sees 1006 and resumes on the same process.
            var beforeReset = await ReadAsync(page);
            proxy.ResetAll();
            await WaitAsync(page, $"s.echo.resumed.length === 2 && s.stream.resumed.length === 2 && s.echo.received.length >= {Count(beforeReset, "echo") + 20} && s.stream.received.length >= {Count(beforeReset, "stream") + 20}");

            // Stop sending and let every echo come home.
            await page.EvaluateAsync("() => window.__lifeline.stopSending()");
            await WaitAsync(page, "s.echo.received.length === s.echo.sent && s.echo.sent > 0");
            var state = await ReadAsync(page);
            var log = await page.EvaluateAsync<string>("() => document.getElementById('log').textContent");
            output.WriteLine(log);

            foreach (var name in new[] { "echo", "stream" })
            {
                var socket = state.GetProperty("sockets").GetProperty(name);
                var received = socket.GetProperty("received").EnumerateArray().Select(e => e.GetInt32()).ToList();
                Assert.Equal(Enumerable.Range(1, received.Count), received); // from 1, each exactly once, in order
                Assert.Empty(socket.GetProperty("lost").EnumerateArray());

                // Connects refused while the new process started are closes too; those of open sockets are the two faults.
                var closes = socket.GetProperty("closes").EnumerateArray().Where(c => c.GetProperty("wasOpen").GetBoolean()).ToList();
                Assert.Equal(2, closes.Count);
                Assert.Equal(1012, closes[0].GetProperty("code").GetInt32());
                Assert.True(RetryHint.TryParse(closes[0].GetProperty("reason").GetString(), out var hint), $"{name}: no hint in the 1012");
                Assert.Equal(hint.TotalMilliseconds, closes[0].GetProperty("delay").GetDouble()); // the client took the server's hint
                Assert.Equal(1006, closes[1].GetProperty("code").GetInt32());
                Assert.False(closes[1].GetProperty("wasClean").GetBoolean());
                Assert.InRange(closes[1].GetProperty("delay").GetDouble(), 0, 1000); // full jitter, attempt 1
                Assert.All(closes, c => Assert.True(c.GetProperty("willReconnect").GetBoolean()));

                var opens = socket.GetProperty("opens").EnumerateArray().ToList();
                Assert.False(opens[0].GetProperty("resumed").GetBoolean());
                var sessionId = opens[0].GetProperty("sessionId").GetString();
                var resumedOpens = opens.Skip(1).ToList();
                Assert.Equal(2, resumedOpens.Count);
                Assert.All(resumedOpens, o => Assert.True(o.GetProperty("resumed").GetBoolean()));
                Assert.All(resumedOpens, o => Assert.Equal(sessionId, o.GetProperty("sessionId").GetString()));

                var prefix = name == "echo" ? string.Empty : "stream: ";
                var delay1012 = closes[0].GetProperty("delay").GetDouble().ToString(CultureInfo.InvariantCulture);
                var delay1006 = closes[1].GetProperty("delay").GetDouble().ToString(CultureInfo.InvariantCulture);
                Assert.Contains($"{prefix}close 1012 ", log, StringComparison.Ordinal);
                Assert.Contains($"{prefix}reconnecting: attempt 1 after 1012, delay {delay1012} ms", log, StringComparison.Ordinal);
                Assert.Contains($"{prefix}close 1006 ", log, StringComparison.Ordinal);
                Assert.Contains($"reconnect in {delay1006} ms", log, StringComparison.Ordinal);
                Assert.Contains($"{prefix}reconnected ws://127.0.0.1:{proxy.EndPoint.Port}", log, StringComparison.Ordinal);
                Assert.Contains($"{prefix}session resumed: ", log, StringComparison.Ordinal);
            }

            var echo = state.GetProperty("sockets").GetProperty("echo");
            Assert.Equal(echo.GetProperty("sent").GetInt32(), echo.GetProperty("received").GetArrayLength());
            Assert.Empty(echo.GetProperty("sendErrors").EnumerateArray());
            Assert.True(echo.GetProperty("received").GetArrayLength() >= 60);
            Assert.True(state.GetProperty("sockets").GetProperty("stream").GetProperty("received").GetArrayLength() >= 60);

            // The server's side: what it said it had received at each resume never exceeds what the page sent, and the
            // second process counted both sessions resumed twice (restored from the drain file, then after the reset).
            foreach (var resumed in echo.GetProperty("resumed").EnumerateArray())
            {
                Assert.InRange(resumed.GetProperty("serverLastReceived").GetInt32(), 1, echo.GetProperty("sent").GetInt32() + 1);
            }

            using var http = new HttpClient();
            var data = JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/lifeline/dashboard/data"))).RootElement;
            Assert.Equal(4, Total(data, "lifeline.server.sessions_resumed"));
            Assert.Equal(0, Total(data, "lifeline.server.sessions_started"));
            Assert.Equal(0, Total(data, "lifeline.server.sessions_lost"));

            second.Signal(ToolProcess.SIGTERM);
            Assert.Equal(0, await second.Exit.WaitAsync(Bound));
        }
        finally
        {
            await browser.DisposeAsync();
            playwright.Dispose();
            if (proxy is not null)
            {
                await proxy.DisposeAsync();
            }

            if (first is not null)
            {
                await first.DisposeAsync();
            }

            if (second is not null)
            {
                await second.DisposeAsync();
            }

            File.Delete(sessionFile);
        }
    }

    [Fact]
    public async Task SessionPage_ResumeWithTamperedToken_Refused1008_ReportedOnThePage_ClientStops()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        TcpFaultProxy? proxy = null;
        var (playwright, browser) = await Chromium.LaunchAsync();
        try
        {
            proxy = new TcpFaultProxy("127.0.0.1", port).Start();
            var origin = $"http://127.0.0.1:{proxy.EndPoint.Port}";
            var stops = await browser.NewPageAsync();
            await stops.GotoAsync(origin + "/?session=1&every=100&retryRefused=0");
            var retries = await browser.NewPageAsync();
            await retries.GotoAsync(origin + "/?session=1&every=100");
            foreach (var page in new[] { stops, retries })
            {
                await WaitAsync(page, "s.echo.received.length >= 3");
                Assert.True(await page.EvaluateAsync<bool>("() => window.__lifeline.tamperToken('echo')"));
            }

            proxy.ResetAll(); // 1006: both pages reconnect and offer the spoiled token

            // retryRefused=0: the refusal is reported and the client stops for good.
            await WaitAsync(stops, "s.echo.state === 'stopped'");
            var echo = (await ReadAsync(stops)).GetProperty("sockets").GetProperty("echo");
            var closes = echo.GetProperty("closes").EnumerateArray().ToList();
            Assert.Equal([1006, 1008], closes.Select(c => c.GetProperty("code").GetInt32()));
            Assert.Equal("session refused", closes[1].GetProperty("reason").GetString());
            Assert.False(closes[1].GetProperty("willReconnect").GetBoolean());
            Assert.Equal(JsonValueKind.Null, closes[1].GetProperty("delay").ValueKind);
            Assert.Equal("refused", Assert.Single(echo.GetProperty("lost").EnumerateArray()).GetProperty("reason").GetString());
            Assert.Single(echo.GetProperty("opens").EnumerateArray());
            Assert.Equal("closed", await stops.EvaluateAsync<string>("() => window.lifelineSocket.state"));
            var log = await stops.EvaluateAsync<string>("() => document.getElementById('log').textContent");
            output.WriteLine(log);
            Assert.Contains("resume token tampered with", log, StringComparison.Ordinal);
            Assert.Contains("session lost (refused)", log, StringComparison.Ordinal);
            Assert.Contains("close 1008 \"session refused\" clean=true; not reconnecting", log, StringComparison.Ordinal);
            Assert.Equal("stopped", await stops.EvaluateAsync<string>("() => document.getElementById('state').textContent"));

            // The default: the refusal is reported, then one new session (never the same token again).
            await WaitAsync(retries, "s.echo.opens.length === 2");
            echo = (await ReadAsync(retries)).GetProperty("sockets").GetProperty("echo");
            closes = [.. echo.GetProperty("closes").EnumerateArray()];
            Assert.Equal([1006, 1008], closes.Select(c => c.GetProperty("code").GetInt32()));
            Assert.True(closes[1].GetProperty("willReconnect").GetBoolean());
            Assert.Equal("refused", Assert.Single(echo.GetProperty("lost").EnumerateArray()).GetProperty("reason").GetString());
            var opens = echo.GetProperty("opens").EnumerateArray().ToList();
            Assert.False(opens[1].GetProperty("resumed").GetBoolean());
            Assert.NotEqual(opens[0].GetProperty("sessionId").GetString(), opens[1].GetProperty("sessionId").GetString());
        }
        finally
        {
            await ShutDownAsync(playwright, browser, proxy, serve);
        }
    }

    [Fact]
    public async Task SessionPage_IdleAndReceiveOnlySockets_BlackHole_FoundByTheHeartbeat_ThenResumed()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        TcpFaultProxy? proxy = null;
        var (playwright, browser) = await Chromium.LaunchAsync();
        try
        {
            proxy = new TcpFaultProxy("127.0.0.1", port).Start();
            var page = await browser.NewPageAsync();

            // The echo socket sends its greeting and then nothing (a ping every 10 minutes); the stream socket only
            // receives. A heartbeat every 2 s, a timeout of 6 s (a server answers at most one heartbeat a second).
            await page.GotoAsync($"http://127.0.0.1:{proxy.EndPoint.Port}/?session=1&every=600000&stream=200&heartbeat=2000");
            await WaitAsync(page, "s.echo.opens.length === 1 && s.stream.received.length >= 5");
            await page.WaitForFunctionAsync("() => window.__lifeline.heartbeatsAnswered('echo') && window.__lifeline.heartbeatsAnswered('stream')", null,
                new PageWaitForFunctionOptions { Timeout = (float)Bound.TotalMilliseconds, PollingInterval = 100 });
            var before = await ReadAsync(page);
            int Closes(JsonElement state, string name) => state.GetProperty("sockets").GetProperty(name).GetProperty("closes").GetArrayLength();
            int Resumes(JsonElement state, string name) => state.GetProperty("sockets").GetProperty(name).GetProperty("resumed").GetArrayLength();

            // Every open link goes silent both ways; new links pass. Before, neither socket had anything of its own
            // outstanding, so neither was ever declared dead: both sat 'open' on the black hole.
            proxy.SilenceAll();
            await WaitAsync(page, $"s.echo.resumed.length > {Resumes(before, "echo")} && s.stream.resumed.length > {Resumes(before, "stream")} && s.stream.received.length >= {Count(before, "stream") + 5}");

            var state = await ReadAsync(page);
            foreach (var name in new[] { "echo", "stream" })
            {
                var socket = state.GetProperty("sockets").GetProperty(name);
                var closes = socket.GetProperty("closes").EnumerateArray().Skip(Closes(before, name)).ToList();
                Assert.Contains(closes, c => c.GetProperty("code").GetInt32() == 1006 && c.GetProperty("reason").GetString() == "heartbeat timeout"
                    && c.GetProperty("willReconnect").GetBoolean());
                Assert.Empty(socket.GetProperty("lost").EnumerateArray());
            }

            var stream = state.GetProperty("sockets").GetProperty("stream").GetProperty("received").EnumerateArray().Select(e => e.GetInt32()).ToList();
            Assert.Equal(Enumerable.Range(1, stream.Count), stream); // nothing pushed meanwhile was lost: each once, in order
        }
        finally
        {
            await ShutDownAsync(playwright, browser, proxy, serve);
        }
    }

    [Fact]
    public async Task SessionPage_AsksAtOnceWhetherTheServerAnswersHeartbeats_LongBeforeTheFirstTimedOne()
    {
        var (serve, port) = await ServeProcess.StartAsync();
        var (playwright, browser) = await Chromium.LaunchAsync();
        try
        {
            var page = await browser.NewPageAsync();

            // A heartbeat every 10 minutes: an answer heard within the bound is to the question each socket asks as soon
            // as nothing of its own is outstanding. The stream socket asks at the Welcome; the echo socket, whose
            // greeting is outstanding then, once its echo acknowledges it. Before, the first question was the first
            // timed heartbeat, and a link that went black before its answer left an idle session open on it for good.
            await page.GotoAsync($"http://127.0.0.1:{port}/?session=1&every=600000&stream=200&heartbeat=600000");
            await page.WaitForFunctionAsync("() => window.__lifeline?.heartbeatsAnswered('echo') && window.__lifeline.heartbeatsAnswered('stream')", null,
                new PageWaitForFunctionOptions { Timeout = (float)Bound.TotalMilliseconds, PollingInterval = 100 });
            var state = await ReadAsync(page);
            Assert.Equal(1, state.GetProperty("sockets").GetProperty("echo").GetProperty("opens").GetArrayLength());
            Assert.Equal(1, state.GetProperty("sockets").GetProperty("stream").GetProperty("opens").GetArrayLength());
        }
        finally
        {
            await ShutDownAsync(playwright, browser, proxy: null, serve);
        }
    }

    /// <summary>Closes the browser, then the proxy (if it was started), then the server process.</summary>
    private static async Task ShutDownAsync(IPlaywright playwright, IBrowser browser, TcpFaultProxy? proxy, IAsyncDisposable serve)
    {
        await browser.DisposeAsync();
        playwright.Dispose();
        if (proxy is not null)
        {
            await proxy.DisposeAsync();
        }

        await serve.DisposeAsync();
    }

    /// <summary>Waits, with a bound, for a condition on the page's data (<c>s</c> is <c>window.__lifeline.sockets</c>).</summary>
    private static async Task WaitAsync(IPage page, string condition)
    {
        try
        {
            await page.WaitForFunctionAsync($"() => {{ const s = window.__lifeline?.sockets; return !!s && !!s.echo && ({condition}); }}", null,
                new PageWaitForFunctionOptions { Timeout = (float)Bound.TotalMilliseconds, PollingInterval = 100 });
        }
        catch (TimeoutException e)
        {
            var log = await page.EvaluateAsync<string>("() => document.getElementById('log').textContent");
            throw new TimeoutException($"waited for {condition}; the page's log:\n{log}", e);
        }
    }

    private static async Task<JsonElement> ReadAsync(IPage page) =>
        JsonDocument.Parse(await page.EvaluateAsync<string>("() => JSON.stringify(window.__lifeline)")).RootElement.Clone();

    private static int Count(JsonElement state, string socket) => state.GetProperty("sockets").GetProperty(socket).GetProperty("received").GetArrayLength();

    private static double Total(JsonElement data, string instrument) =>
        data.GetProperty("instruments").EnumerateArray().FirstOrDefault(i => i.GetProperty("name").GetString() == instrument) is { ValueKind: JsonValueKind.Object } found
            ? found.GetProperty("total").GetDouble()
            : 0;

    [GeneratedRegex(@"listening on http://127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();
}
