using System.Diagnostics;
using System.Globalization;

namespace Lifeline.Packaging.Tests;

/// <summary>
/// samples/LivePrices built from the local feed only, run as processes on 127.0.0.1: a server restart (SIGTERM,
/// drain with 1012 and the sessions saved, a new process on the same port) must resume the console client's session,
/// and the ticks it prints must run on with no gap and no repeat.
/// </summary>
[Collection(PackageFeedCollection.Name)]
public sealed class SampleTests(PackageFeedFixture feed)
{
    // Generous: two shared cores, and dotnet processes starting cold.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task LivePrices_ServerRestarts_SessionResumesWithNoGapAndNoRepeat()
    {
        var build = Path.Combine(feed.WorkDirectory, "sample-build");
        await DotnetProcess.RunCheckedAsync(feed.RepositoryRoot, PackageFeedFixture.BuildTimeout,
            "build", Path.Combine("samples", "LivePrices", "LivePrices.slnx"), "-c", "Release", "--artifacts-path", build,
            $"-p:LifelineFeed={feed.Feed}", $"-p:LifelineVersion={feed.Version}", "-nodeReuse:false");
        var server = Path.Combine(build, "bin", "LivePrices.Server", "release", "LivePrices.Server.dll");
        var client = Path.Combine(build, "bin", "LivePrices.Client", "release", "LivePrices.Client.dll");
        Assert.True(File.Exists(Path.Combine(build, "bin", "LivePrices.Server", "release", "page", "lifeline.js")), "lifeline.js not copied beside the server");

        // The drain file and the feed's position go to this test's own folder.
        var data = Path.Combine(feed.WorkDirectory, "sample-data");
        var port = FreePort();
        var url = $"http://127.0.0.1:{port}";
        string[] serverArgs = ["--urls", url, "--Ticker:IntervalMs=50", $"--DataDirectory={data}"];
        await using var first = OutputProcess.Start(server, serverArgs);
        await first.WaitForLineAsync(line => line.Contains("Now listening", StringComparison.Ordinal), Bound);

        await using var subscriber = OutputProcess.Start(client, $"ws://127.0.0.1:{port}/prices");
        await subscriber.WaitForAsync(lines => lines.Count(IsTick) >= 5, Bound);

        // A deployment: SIGTERM, the server drains with 1012 and saves the sessions, then a new process takes the port.
        DotnetProcess.Terminate(first.Process);
        await first.WaitForExitAsync(Bound);
        Assert.Equal(0, first.Process.ExitCode);
        Assert.Contains(first.Lines, line => line.Contains("sessions saved", StringComparison.Ordinal));
        await subscriber.WaitForLineAsync(line => line.Contains("after 1012", StringComparison.Ordinal), Bound);
        var before = subscriber.Lines.Count;

        await using var second = OutputProcess.Start(server, serverArgs);
        await second.WaitForLineAsync(line => line.Contains("Now listening", StringComparison.Ordinal), Bound);

        // Back: the session resumed (no new subscription) and ticks arrive again.
        await subscriber.WaitForAsync(lines => lines.Skip(before).Count(IsTick) >= 20, Bound);
        var after = subscriber.Lines.Skip(before).ToList();
        Assert.Contains(after, line => line.StartsWith("resumed", StringComparison.Ordinal));
        Assert.DoesNotContain(after, line => line.StartsWith("subscribed", StringComparison.Ordinal));

        // The client stops cleanly on SIGTERM and counts two connections.
        DotnetProcess.Terminate(subscriber.Process);
        await subscriber.WaitForExitAsync(Bound);
        Assert.Equal(0, subscriber.Process.ExitCode);
        var lines = subscriber.Lines;
        var output = string.Join('\n', lines);
        Assert.True(lines.Count(line => line.StartsWith("stopped after 2 connections", StringComparison.Ordinal)) == 1, output);
        Assert.DoesNotContain(lines, line => line.StartsWith("session lost", StringComparison.Ordinal) || line.StartsWith("gap", StringComparison.Ordinal)
            || line.StartsWith("repeat", StringComparison.Ordinal) || line.StartsWith("missed", StringComparison.Ordinal));

        // Every tick from the first to the last, once each and in order, across the restart.
        var sequence = lines.Where(IsTick).Select(line => long.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture)).ToList();
        var start = sequence[0];
        Assert.True(sequence.SequenceEqual(Enumerable.Range(0, sequence.Count).Select(i => start + i)), $"ticks not consecutive:\n{output}");
    }

    private static bool IsTick(string line) => line.StartsWith("tick ", StringComparison.Ordinal);

    private static int FreePort() => Lifeline.FaultProxy.LoopbackPorts.ForRestartableServer();

    /// <summary>A process whose output lines are collected; waits are bounded and wake on every new line.</summary>
    private sealed class OutputProcess : IAsyncDisposable
    {
        private readonly List<string> _lines = [];
        private readonly SemaphoreSlim _changed = new(0);

        private OutputProcess(Process process) => Process = process;

        public Process Process { get; }

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public static OutputProcess Start(string dll, params string[] args)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add(dll);
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            DotnetProcess.Prepare(start);
            var output = new OutputProcess(new Process { StartInfo = start });
            output.Process.OutputDataReceived += (_, e) => output.Add(e.Data);
            output.Process.ErrorDataReceived += (_, e) => output.Add(e.Data);
            output.Process.Start();
            output.Process.BeginOutputReadLine();
            output.Process.BeginErrorReadLine();
            return output;
        }

        public Task WaitForLineAsync(Func<string, bool> match, TimeSpan timeout) => WaitForAsync(lines => lines.Any(match), timeout);

        public async Task WaitForAsync(Func<IReadOnlyList<string>, bool> condition, TimeSpan timeout)
        {
            var deadline = Stopwatch.StartNew();
            while (!condition(Lines))
            {
                var left = timeout - deadline.Elapsed;
                var exited = Process.HasExited;
                if (left <= TimeSpan.Zero || (!await _changed.WaitAsync(exited ? TimeSpan.FromSeconds(1) : left) && exited))
                {
                    Assert.Fail($"condition not met within {timeout} (exited: {Process.HasExited}); output:\n{string.Join('\n', Lines)}");
                }
            }
        }

        public async Task WaitForExitAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await Process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"did not exit within {timeout}; output:\n{string.Join('\n', Lines)}");
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                await Process.WaitForExitAsync();
            }

            Process.Dispose();
            _changed.Dispose();
        }

        private void Add(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_lines)
            {
                _lines.Add(line);
            }

            _changed.Release();
        }
    }
}
