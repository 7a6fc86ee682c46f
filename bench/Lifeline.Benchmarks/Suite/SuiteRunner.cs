using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// The whole suite of issue 13 in one command: <c>all</c> (the sizes in docs/benchmarks.md, under 15 minutes on the
/// 2-core VM) or <c>smoke</c> (tiny counts; only checks that every scenario runs). An optional list of scenario names
/// (throughput, echo, storm, deadlink, memory) runs only those; <c>memory-idle</c>, never part of the default run, is
/// the memory scenario without its long hold (only the per-connection figures), for iterating on them. Everything
/// listens on 127.0.0.1 and is stopped at the end.
/// </summary>
public static class SuiteRunner
{
    // Memory before the storm and the dead link: objects those two leave behind (closing sockets, the timers of clients
    // disposed) were let go during the raw client's window, which then read 130-230 B lower per connection.
    private static readonly string[] Scenarios = ["throughput", "echo", "memory", "storm", "deadlink"];

    /// <summary>Every scenario in the order they run, with those that run only when named (memory-idle).</summary>
    private static readonly string[] InOrder = ["throughput", "echo", "memory-idle", "memory", "storm", "deadlink"];

    public static async Task<int> RunAsync(bool smoke, IReadOnlyCollection<string> only, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(only);
        ArgumentNullException.ThrowIfNull(output);
        var settings = smoke ? SuiteSettings.Smoke : SuiteSettings.Full;
        var selected = only.Count == 0 ? Scenarios : [.. InOrder.Where(only.Contains)];
        await output.WriteLineAsync($"# Lifeline benchmark suite ({(smoke ? "smoke" : "full")}): {string.Join(", ", selected)}");
        await output.WriteLineAsync($"{RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, {Environment.ProcessorCount} cores, load average {LoadAverage()}\n");
        var total = Stopwatch.GetTimestamp();
        var failed = 0;
        foreach (var name in selected)
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                switch (name)
                {
                    case "throughput":
                        await ThroughputScenario.RunAsync(settings, output);
                        break;
                    case "echo":
                        await EchoScenario.RunAsync(settings, output);
                        break;
                    case "storm":
                        await RestartStormScenario.RunAsync(settings, output);
                        break;
                    case "deadlink":
                        await DeadLinkScenario.RunAsync(settings, output);
                        break;
                    case "memory-idle":
                        await IdleMemoryScenario.RunAsync(settings, output, hold: false);
                        break;
                    default:
                        await IdleMemoryScenario.RunAsync(settings, output, hold: true);
                        break;
                }
            }
            catch (Exception e)
            {
                failed++;
                await output.WriteLineAsync($"FAILED {name}: {e}");
            }

            await output.WriteLineAsync($"({name}: {Table.Format(Stopwatch.GetElapsedTime(start))}, load average {LoadAverage()})\n");
        }

        await output.WriteLineAsync($"suite: {Table.Format(Stopwatch.GetElapsedTime(total))}, {failed} scenario(s) failed");
        return failed == 0 ? 0 : 1;
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
