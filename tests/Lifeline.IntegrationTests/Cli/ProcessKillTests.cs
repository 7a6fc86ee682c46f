using System.Globalization;
using System.Text.RegularExpressions;
using Lifeline.Cli;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.FaultProxy;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Session;
using Lifeline.Session.Wire;

namespace Lifeline.IntegrationTests.Cli;

/// <summary>
/// <c>lifeline serve</c> as a real process killed with SIGKILL (no drain, no session file), then started again on the
/// same port with the same <c>--session-file</c>: session clients are told explicitly what was lost, and start over.
/// </summary>
[Collection(ToolProcessCollection.Name)]
public sealed partial class ProcessKillTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task ServeKilledWithSigkill_SessionClientsGetSessionLostWithTheGap_AndTheNextSessionWorksBothWays()
    {
        var sessionFile = Path.Combine(Path.GetTempPath(), $"lifeline-test-{Guid.NewGuid():N}.sessions");
        ToolProcess? second = null;
        await using var first = ToolProcess.Start("serve", "--urls", $"http://127.0.0.1:{LoopbackPorts.ForRestartableServer()}", "--session-file", sessionFile, "--hint-min", "0", "--hint-max", "1");
        try
        {
            await first.WaitForOutputAsync("press Ctrl-C", Bound);
            var port = int.Parse(Listening().Match(first.Output).Groups[1].Value, CultureInfo.InvariantCulture);
            await using var echo = new LifelineClient(SessionClient(new Uri($"ws://127.0.0.1:{port}/ws")));
            await using var stream = new LifelineClient(SessionClient(new Uri($"ws://127.0.0.1:{port}/stream?interval=20")));
            var echoStates = new StateRecorder(echo);
            var echoLost = new TaskCompletionSource<SessionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
            var streamLost = new TaskCompletionSource<SessionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
            echo.SessionLost += (_, e) => echoLost.TrySetResult(e);
            stream.SessionLost += (_, e) => streamLost.TrySetResult(e);
            await echo.StartAsync().WaitAsync(Bound);
            await stream.StartAsync().WaitAsync(Bound);
            var firstEchoSession = echo.SessionId;
            var firstStreamSession = stream.SessionId;
            var streamed = new List<int>();
            using var reading = new CancellationTokenSource();
            var streamReader = Task.Run(async () =>
            {
                await foreach (var message in stream.ReadAllAsync(reading.Token))
                {
                    lock (streamed)
                    {
                        streamed.Add(int.Parse(message.Text!, CultureInfo.InvariantCulture));
                    }
                }
            });

            // Both directions work on the first process: 1..20 echoed back in order, and acknowledged.
            for (var i = 1; i <= 20; i++)
            {
                await echo.SendTextAsync(i.ToString(CultureInfo.InvariantCulture));
            }

            Assert.Equal(Enumerable.Range(1, 20), await ReadNumbersAsync(echo, 20));
            await Wait.UntilAsync(() => echo.UnacknowledgedMessages == 0, Bound, "the server to acknowledge 1..20");
            await Wait.UntilAsync(() => Count(streamed) >= 10, Bound, "10 streamed numbers from the first process");

            // Freeze the server (SIGSTOP), so that 21..25 reach its socket but are never read, echoed or acknowledged;
            // then kill it (SIGKILL): no drain, no Close frame, no session file.
            first.Signal(ToolProcess.SIGSTOP);
            await Wait.UntilAsync(() => IsStopped(first.Id), Bound, "the server to stop on SIGSTOP");
            for (var i = 21; i <= 25; i++)
            {
                await echo.SendTextAsync(i.ToString(CultureInfo.InvariantCulture));
            }

            try
            {
                await Wait.UntilAsync(() => echo.UnacknowledgedMessages == 5, Bound, "21..25 sent and held for replay");
            }
            catch (TimeoutException)
            {
                Assert.Fail($"21..25 were not all held for replay: {echo.UnacknowledgedMessages} unacknowledged, {echo.Statistics.QueuedMessages} queued, state {echo.State}; states: {string.Join(", ", echoStates.Events.Select(e => e.Current))}");
            }

            first.Signal(ToolProcess.SIGKILL);
            Assert.Equal(128 + ToolProcess.SIGKILL, await first.Exit.WaitAsync(Bound)); // killed by the signal
            var dropped = await echoStates.NextAsync(e => e.Current == LifelineClientState.Reconnecting, Bound);
            Assert.Equal(CloseCode.AbnormalClosure, dropped.Close?.Code); // no 1012: the process died without a drain
            Assert.False(File.Exists(sessionFile), "a killed process wrote a session file");
            Assert.DoesNotContain("draining", first.Output, StringComparison.Ordinal);
            var streamedBeforeKill = Snapshot(streamed);

            second = ToolProcess.Start("serve", "--urls", $"http://127.0.0.1:{port}", "--session-file", sessionFile, "--hint-min", "0", "--hint-max", "1");
            await second.WaitForOutputAsync("press Ctrl-C", Bound);

            // The new process has no record of either session: each client is told so, with what it cannot recover.
            var echoReport = await echoLost.Task.WaitAsync(Bound);
            Assert.Equal(firstEchoSession, echoReport.SessionId);
            Assert.Equal(SessionLostReason.NotFound, echoReport.Reason);
            Assert.True(echoReport.LostByServer);
            Assert.False(echoReport.Refused);
            Assert.Equal(0, echoReport.ServerLastReceived);
            Assert.True(echoReport.LostFromServer.IsEmpty);
            Assert.Equal(new SequenceRange(21, 5), echoReport.UnconfirmedToServer); // exactly the messages the frozen server never took
            var streamReport = await streamLost.Task.WaitAsync(Bound);
            Assert.Equal(firstStreamSession, streamReport.SessionId);
            Assert.Equal(SessionLostReason.NotFound, streamReport.Reason);
            Assert.True(streamReport.UnconfirmedToServer.IsEmpty); // the stream client sent nothing

            // The next session starts clean: new ids, not resumed, and messages flow both ways again.
            var reconnected = await echoStates.NextAsync(e => e.Current == LifelineClientState.Connected, Bound);
            Assert.False(reconnected.SessionResumed);
            Assert.NotEqual(firstEchoSession, echo.SessionId);
            Assert.NotEqual(firstStreamSession, stream.SessionId);
            for (var i = 1; i <= 20; i++)
            {
                await echo.SendTextAsync(i.ToString(CultureInfo.InvariantCulture));
            }

            Assert.Equal(Enumerable.Range(1, 20), await ReadNumbersAsync(echo, 20)); // 21..25 are not echoed: reported lost, never resent
            await Wait.UntilAsync(() => Count(streamed) >= streamedBeforeKill.Count + 10, Bound, "10 numbers from the second process");
            await reading.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => streamReader);

            // The stream is two runs, each 1, 2, 3, ... with no gap or repeat: the first process's, then the new session's.
            var numbers = Snapshot(streamed);
            var restart = numbers.FindIndex(1, n => n == 1);
            Assert.True(restart > 0, "the new session's stream starts again at 1: " + string.Join(",", numbers));
            Assert.Equal(Enumerable.Range(1, restart), numbers[..restart]);
            Assert.Equal(Enumerable.Range(1, numbers.Count - restart), numbers[restart..]);
            Assert.True(restart >= streamedBeforeKill.Count);
            Assert.Equal((2L, 0L, 1L), echo.SessionCounts); // started twice, never resumed, lost once
            Assert.Equal((2L, 0L, 1L), stream.SessionCounts);

            second.Signal(ToolProcess.SIGTERM);
            Assert.Equal(ExitCodes.Success, await second.Exit.WaitAsync(Bound));
        }
        finally
        {
            if (second is not null)
            {
                await second.DisposeAsync();
            }

            File.Delete(sessionFile);
        }
    }

    private static LifelineClientOptions SessionClient(Uri uri)
    {
        var options = Client.ClientTestOptions.Fast(uri);
        options.Session = new SessionOptions();
        return options;
    }

    private static async Task<List<int>> ReadNumbersAsync(LifelineClient client, int count)
    {
        var numbers = new List<int>();
        while (numbers.Count < count)
        {
            var message = await Wait.ReadAsync(client.Messages, Bound);
            numbers.Add(int.Parse(message.Text!, CultureInfo.InvariantCulture));
        }

        return numbers;
    }

    /// <summary>Whether every thread of the process is stopped (state T in /proc/PID/task/*/stat).</summary>
    private static bool IsStopped(int pid)
    {
        try
        {
            return Directory.GetDirectories($"/proc/{pid}/task").All(task =>
            {
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T');
            });
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static int Count(List<int> list)
    {
        lock (list)
        {
            return list.Count;
        }
    }

    private static List<int> Snapshot(List<int> list)
    {
        lock (list)
        {
            return [.. list];
        }
    }

    [GeneratedRegex(@"listening on http://127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();
}
