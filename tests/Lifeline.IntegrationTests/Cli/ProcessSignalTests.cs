using System.Text.Json;
using System.Text.RegularExpressions;
using Lifeline.Cli;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary>Ctrl-C (SIGINT) and SIGTERM sent to the real process while its stdin is a pipe that never closes.</summary>
[Collection(ToolProcessCollection.Name)]
public sealed partial class ProcessSignalTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(ToolProcess.SIGINT, ExitCodes.Interrupted)]
    [InlineData(ToolProcess.SIGTERM, ExitCodes.Terminated)]
    public async Task Connect_SignalWithStdinHeldOpen_ClosesWith1000AndExits(int signal, int expected)
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", server.Uri("/echo").ToString(), "--json");
        await tool.WaitForEventAsync("connected");
        await tool.Input.WriteLineAsync("typed before the signal");
        await tool.WaitForEventAsync("message");

        tool.Signal(signal); // stdin stays open: the command must not wait for it

        Assert.Equal(expected, await tool.Exit.WaitAsync(Bound));
        Assert.Equal(1, server.CloseFramesReceived);
        var stopped = tool.JsonLines[^1];
        Assert.Equal("stopped", stopped.GetProperty("event").GetString());
        Assert.Equal(1000, stopped.GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Connect_IntoHeadThatExits_StopsWith141()
    {
        // `lifeline connect -n ... | head -n 3`: before, the runtime dropped every write to the pipe head had left without a
        // word, so the tool read on and stayed connected forever, and the shell's pipeline never ended.
        await using var server = await TestWebSocketServer.StartAsync();
        var info = new System.Diagnostics.ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(ToolProcess.ShellCommand("connect", "--json", "--no-stdin", server.Uri("/burst/1000000").ToString()) + " | head -n 3; exit ${PIPESTATUS[0]}");
        using var shell = System.Diagnostics.Process.Start(info)!;
        var output = shell.StandardOutput.ReadToEndAsync();
        try
        {
            await shell.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            if (!shell.HasExited)
            {
                shell.Kill(entireProcessTree: true);
            }
        }

        Assert.Equal(ExitCodes.OutputClosed, shell.ExitCode);
        Assert.Equal(3, ToolProcess.CompleteLines(await output).Count());
    }

    [Fact]
    public async Task Connect_StdoutNeverRead_SigtermStillEndsIt()
    {
        // Before, a write waiting on a full stdout pipe held the printer, the stop's own "stopped" line waited behind it,
        // and the signal never ended the process.
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("connect", "--json", server.Uri("/burst/1000000").ToString());
        await tool.WaitForEventAsync("message"); // connected, its signal handling in place, the burst under way
        tool.PauseOutput();
        await Task.Delay(2000); // a million messages: the pipe (64 KiB) is full within a few hundred more lines

        tool.Signal(ToolProcess.SIGTERM);

        await tool.Ended.WaitAsync(TimeSpan.FromSeconds(60)); // with stdout still unread
        Assert.Equal(ExitCodes.Terminated, tool.ExitCode);
        tool.ResumeOutput();
        await tool.Exit.WaitAsync(Bound);
        // Far fewer lines than messages came out: stdout really was full (a test whose pipe never filled proves nothing).
        Assert.InRange(tool.JsonLines.Count(line => line.GetProperty("event").GetString() == "message"), 1, 999_999);
    }

    [Fact]
    public async Task Connect_StdoutNeverRead_MaxTimeStillEndsIt()
    {
        // Before, the deadline stopped the client, whose "closing" line waited behind the blocked write, and only a
        // signal ended the process.
        await using var server = await TestWebSocketServer.StartAsync();
        // 8 s: time for the pipe to fill after the first message even on a loaded machine, before the deadline.
        await using var tool = ToolProcess.Start("connect", "--json", "--max-time", "8", server.Uri("/burst/1000000").ToString());
        await tool.WaitForEventAsync("message"); // connected, the burst under way
        tool.PauseOutput(); // a million messages: the pipe (64 KiB) is full within a few hundred more lines

        await tool.Ended.WaitAsync(TimeSpan.FromSeconds(60)); // with stdout still unread
        Assert.Equal(ExitCodes.TimedOut, tool.ExitCode);
        tool.ResumeOutput();
        await tool.Exit.WaitAsync(Bound);
        Assert.DoesNotContain("reached; closed", tool.Error, StringComparison.Ordinal); // ended by the process, not by a command that got unstuck
        // Far fewer lines than messages came out: stdout really was full (a test whose pipe never filled proves nothing).
        Assert.InRange(tool.JsonLines.Count(line => line.GetProperty("event").GetString() == "message"), 1, 999_999);
    }

    [Theory]
    [InlineData(ToolProcess.SIGINT)]
    [InlineData(ToolProcess.SIGTERM)]
    public async Task Connect_SignalWhileReconnecting_Exits(int signal)
    {
        await using var tool = ToolProcess.Start("connect", "ws://127.0.0.1:1/x", "--json");
        await tool.WaitForEventAsync("reconnecting");

        tool.Signal(signal);

        Assert.Equal(signal == ToolProcess.SIGINT ? ExitCodes.Interrupted : ExitCodes.Terminated, await tool.Exit.WaitAsync(Bound));
    }

    [Theory]
    [InlineData(ToolProcess.SIGINT)]
    [InlineData(ToolProcess.SIGTERM)]
    public async Task Proxy_SignalWithStdinHeldOpen_StopsAndExitsZero(int signal)
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("proxy", "--upstream", $"127.0.0.1:{server.Port}");
        await tool.WaitForOutputAsync("type 'help'");
        var port = int.Parse(ProxyPort().Match(tool.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        await using (var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo")))
        {
            await client.SendTextAsync("through the proxy");
            await Wait.UntilAsync(() => client.Messages.Contains("through the proxy"), Bound);
        }

        tool.Signal(signal);

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
    }

    [Fact]
    public async Task Proxy_StdoutNeverRead_GoesOnForwarding_AndSigtermStillEndsIt()
    {
        // A script that starts the proxy and never reads its stdout: once the pipe is full, the proxy's writes to stdout
        // wait. Before, each link waited on its link-opened line before forwarding, so the proxy stopped forwarding;
        // and the last flush at exit waited on the blocked write, so SIGTERM never ended the process.
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("proxy", "--upstream", $"127.0.0.1:{server.Port}");
        await tool.WaitForOutputAsync("type 'help'");
        var port = int.Parse(ProxyPort().Match(tool.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        tool.PauseOutput();

        // About 100 bytes of stdout per link: 2,000 links make far more than the pipe and the reader's buffers hold.
        var linked = 0;
        using (var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            for (; linked < 2_000 && !bound.IsCancellationRequested; linked++)
            {
                using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                try
                {
                    await socket.ConnectAsync(System.Net.IPAddress.Loopback, port, bound.Token);
                }
                catch (OperationCanceledException)
                {
                    break; // the proxy stopped taking connections
                }
            }
        }

        Assert.Equal(2_000, linked); // the proxy took every connection

        await using (var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo")))
        {
            await client.SendTextAsync("through the proxy");
            await Wait.UntilAsync(() => client.Messages.Contains("through the proxy"), Bound, "the echo through the proxy");
        }

        tool.Signal(ToolProcess.SIGTERM);

        await tool.Ended.WaitAsync(Bound); // with stdout still unread
        Assert.Equal(ExitCodes.Success, tool.ExitCode);
        tool.ResumeOutput();
        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        // What the pipe held comes out at the end; the lines still queued when the process ended never did, which shows
        // stdout really was full (a test whose pipe never filled would prove nothing).
        var ended = tool.Output.Split('\n').Count(line => line.Contains(" link-ended ", StringComparison.Ordinal));
        Assert.InRange(ended, 1, 1_999);
    }

    [Fact]
    public async Task Serve_SigtermWithStdinHeldOpen_DrainsAndExitsZero()
    {
        await using var tool = ToolProcess.Start("serve", "--urls", "http://127.0.0.1:0", "--drain-timeout", "2");
        await tool.WaitForOutputAsync("press Ctrl-C");

        tool.Signal(ToolProcess.SIGTERM);

        Assert.Equal(ExitCodes.Success, await tool.Exit.WaitAsync(Bound));
        Assert.Contains("draining 0 connections with 1012", tool.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_SecondCtrlCDuringALongDrain_EndsTheProcessAtOnce()
    {
        await using var tool = ToolProcess.Start("serve", "--urls", "http://127.0.0.1:0", "--drain-timeout", "120");
        await tool.WaitForOutputAsync("press Ctrl-C");
        var port = int.Parse(ServePort().Match(tool.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

        // A client that never reads: it never answers the 1012, so the drain waits for it up to the drain timeout.
        using var silent = await RawWebSocketClient.ConnectAsync(port);
        await silent.SendFrameAsync(0x1, "registered?"u8.ToArray());
        Assert.NotNull(await silent.ReadFrameAsync(Bound)); // the echo: the server counts this connection
        tool.Signal(ToolProcess.SIGINT);
        await tool.WaitForOutputAsync("draining 1 connections");

        // Before, the host's console lifetime marked every Ctrl-C handled, so the second one was ignored too and the
        // process went on draining (the user needed kill -9). Now the runtime ends it.
        tool.Signal(ToolProcess.SIGINT);
        var exit = await tool.Exit.WaitAsync(Bound);
        Assert.DoesNotContain("stopped after", tool.Output, StringComparison.Ordinal); // it did not wait for the drain
        Assert.NotEqual(ExitCodes.Success, exit);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task IdleScan_Interrupted_ReportsWhatItMeasuredAndExits130(bool json)
    {
        await using var server = await TestWebSocketServer.StartAsync();
        string[] args = ["idle-scan", server.Uri("/silent").ToString(), "--min", "1", "--max", "600", "--parallel", "2", .. json ? new[] { "--json" } : []];
        await using var tool = ToolProcess.Start(args);
        await Wait.UntilAsync(() => (tool.Output + tool.Error).Contains("1 s of silence: survived", StringComparison.Ordinal), Bound, "the 1 s probe to survive");

        tool.Signal(ToolProcess.SIGINT);

        Assert.Equal(ExitCodes.Interrupted, await tool.Exit.WaitAsync(Bound));
        if (json)
        {
            var result = JsonDocument.Parse(tool.Output).RootElement;
            Assert.True(result.GetProperty("interrupted").GetBoolean());
            Assert.Equal(1, result.GetProperty("longestSurvivedSeconds").GetDouble());
            Assert.False(result.GetProperty("found").GetBoolean());
        }
        else
        {
            Assert.Matches(@"longest silence survived\s+1 s, scan interrupted", tool.Output);
            Assert.DoesNotContain("none up to --max", tool.Output, StringComparison.Ordinal);
            Assert.Matches(@"\[\s*\d+\.\d s\] round 1", tool.Output); // progress lines carry the elapsed time
        }
    }

    [Theory]
    [InlineData(ToolProcess.SIGINT, ExitCodes.Interrupted)]
    [InlineData(ToolProcess.SIGTERM, ExitCodes.Terminated)]
    public async Task Probe_SignalWhileTheUpgradeGoesUnanswered_ExitsInterrupted(int signal, int expected)
    {
        // A server that takes the TCP connection and never answers the upgrade: the probe waits (up to --timeout).
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        await using var tool = ToolProcess.Start("probe", $"ws://127.0.0.1:{port}/ws", "--timeout", "60");
        using var accepted = await silent.AcceptTcpClientAsync().WaitAsync(Bound);

        tool.Signal(signal);

        // Before, the cancelled connect was reported as a failed probe ("tcp failed: The operation was canceled", exit 1).
        Assert.Equal(expected, await tool.Exit.WaitAsync(Bound));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Probe_InterruptedAfterTheUpgrade_PrintsWhatItMeasuredAndExits130(bool json)
    {
        // Before, Ctrl-C once the connection was open printed nothing at all: the timings already taken were lost. The
        // server answers the upgrade and never a ping, so the probe is waiting for a pong, or watching, when stopped.
        await using var server = RawFrameServer.Start();
        string[] args = ["probe", server.Uri.ToString(), "--pings", "2", "--duration", "600", .. json ? new[] { "--json" } : []];
        await using var tool = ToolProcess.Start(args);
        await server.ClientSpoke.WaitAsync(Bound); // its first ping: it read the 101

        tool.Signal(ToolProcess.SIGINT);

        Assert.Equal(ExitCodes.Interrupted, await tool.Exit.WaitAsync(Bound));
        if (json)
        {
            var result = JsonDocument.Parse(tool.Output).RootElement;
            Assert.True(result.GetProperty("interrupted").GetBoolean());
            Assert.Equal(101, result.GetProperty("status").GetInt32());
            Assert.Equal(JsonValueKind.Null, result.GetProperty("end").ValueKind);
        }
        else
        {
            Assert.Matches(@"status\s+101", tool.Output);
            Assert.Contains("not watched to the end: interrupted", tool.Output, StringComparison.Ordinal);
        }

        // The probe closed the connection with a Close frame, code 1000: the last frame it sent.
        var (opcode, payload) = (await server.FirstConnectionFramesAsync(Bound))[^1];
        Assert.Equal(0x8, opcode);
        Assert.Equal(1000, (payload[0] << 8) | payload[1]);
    }

    [GeneratedRegex(@"proxy listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ProxyPort();

    [GeneratedRegex(@"http://127\.0\.0\.1:(\d+)")]
    private static partial Regex ServePort();
}
