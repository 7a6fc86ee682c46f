using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Lifeline.Cli;
using Lifeline.Cli.Commands;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary><c>lifeline connect --session</c> against <c>lifeline serve</c>, both real processes, across a SIGTERM restart.</summary>
[Collection(ToolProcessCollection.Name)]
public sealed partial class ProcessSessionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ConnectSession_ServeRestartedWithSigterm_NumbersRunOnWithNoGapOrRepeat_AndResumedIsPrinted()
    {
        var sessionFile = Path.Combine(Path.GetTempPath(), $"lifeline-test-{Guid.NewGuid():N}.sessions");
        try
        {
            await using var first = ToolProcess.Start("serve", "--urls", $"http://127.0.0.1:{LoopbackPorts.ForRestartableServer()}", "--session-file", sessionFile, "--hint-min", "0", "--hint-max", "1");
            await first.WaitForOutputAsync("press Ctrl-C");
            var port = int.Parse(Listening().Match(first.Output).Groups[1].Value, CultureInfo.InvariantCulture);
            await using var client = ToolProcess.Start("connect", $"ws://127.0.0.1:{port}/stream?interval=20", "--session", "--json", "--no-stdin");
            await Wait.UntilAsync(() => Numbers(client).Count >= 20, Bound, "20 numbers before the restart");

            first.Signal(ToolProcess.SIGTERM);
            Assert.Equal(ExitCodes.Success, await first.Exit.WaitAsync(Bound));
            Assert.True(File.Exists(sessionFile), "the drain wrote no session file: " + first.Output);
            var beforeRestart = Numbers(client).Count;
            await using var second = ToolProcess.Start("serve", "--urls", $"http://127.0.0.1:{port}", "--session-file", sessionFile);
            await second.WaitForOutputAsync("press Ctrl-C");
            await client.WaitForEventAsync("resumed", Bound);
            await Wait.UntilAsync(() => Numbers(client).Count >= beforeRestart + 20, Bound, "20 more numbers after the restart");

            client.Signal(ToolProcess.SIGTERM);
            Assert.Equal(ExitCodes.Terminated, await client.Exit.WaitAsync(Bound));
            var numbers = Numbers(client);
            Assert.Equal(Enumerable.Range(1, numbers.Count), numbers); // from 1, each once, in order, across the restart
            var events = client.JsonLines.Select(l => l.GetProperty("event").GetString()).ToList();
            Assert.DoesNotContain("session-lost", events);
            var resumed = client.JsonLines.Single(l => l.GetProperty("event").GetString() == "resumed").GetProperty("session");
            var connected = client.JsonLines.First(l => l.GetProperty("event").GetString() == "connected").GetProperty("session");
            Assert.Equal(connected.GetProperty("id").GetString(), resumed.GetProperty("id").GetString());
            Assert.False(connected.GetProperty("resumed").GetBoolean());
            Assert.Equal(0, resumed.GetProperty("replayedToServer").GetInt64()); // the client sent nothing
            Assert.True(resumed.GetProperty("replayedFromServer").GetInt64() >= 0);

            second.Signal(ToolProcess.SIGTERM);
            Assert.Equal(ExitCodes.Success, await second.Exit.WaitAsync(Bound));
        }
        finally
        {
            File.Delete(sessionFile);
        }
    }

    [Fact]
    public async Task PlainConnect_ToServeSessionEndpoints_WorksAsBefore()
    {
        var sessionFile = Path.Combine(Path.GetTempPath(), $"lifeline-test-{Guid.NewGuid():N}.sessions");
        try
        {
            await using var serve = ToolProcess.Start("serve", "--urls", "http://127.0.0.1:0", "--session-file", sessionFile);
            await serve.WaitForOutputAsync("press Ctrl-C");
            var port = int.Parse(Listening().Match(serve.Output).Groups[1].Value, CultureInfo.InvariantCulture);

            await using (var echo = ToolProcess.Start("connect", $"ws://127.0.0.1:{port}/ws", "--json"))
            {
                await echo.WaitForEventAsync("connected", Bound);
                await echo.Input.WriteLineAsync("one");
                await echo.Input.WriteLineAsync("two");
                echo.CloseInput();
                Assert.Equal(ExitCodes.Success, await echo.Exit.WaitAsync(Bound));
                Assert.Equal(["one", "two"], Messages(echo));
                Assert.All(echo.JsonLines, l => Assert.Equal(JsonValueKind.Null, l.GetProperty("session").ValueKind));
            }

            await using (var stream = ToolProcess.Start("connect", $"ws://127.0.0.1:{port}/stream?interval=20&count=3", "--json", "--no-stdin"))
            {
                Assert.Equal(ExitCodes.Success, await stream.Exit.WaitAsync(Bound)); // the stream ends with 1000 after 3
                Assert.Equal(["1", "2", "3"], Messages(stream));
            }

            serve.Signal(ToolProcess.SIGTERM);
            Assert.Equal(ExitCodes.Success, await serve.Exit.WaitAsync(Bound));
        }
        finally
        {
            File.Delete(sessionFile);
        }
    }

    [Theory]
    [InlineData("http://127.0.0.1:5000", null, "lifeline-serve-5000.sessions")]
    [InlineData("http://127.0.0.1:0", null, null)]
    [InlineData("http://127.0.0.1:0", "my.sessions", "my.sessions")]
    public void SessionFilePath_DefaultsToOnePerPort(string urls, string? given, string? expected)
    {
        var path = ServeCommand.SessionFilePath(urls, given);

        Assert.Equal(expected, path is null ? null : Path.GetFileName(path));
    }

    private static List<string?> Messages(ToolProcess tool) =>
        [.. tool.JsonLines.Where(l => l.GetProperty("event").GetString() == "message").Select(l => l.GetProperty("data").GetString())];

    private static List<int> Numbers(ToolProcess tool) =>
        [.. Messages(tool).Select(m => int.Parse(m!, CultureInfo.InvariantCulture))];

    [GeneratedRegex(@"listening on http://127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();
}
