using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// The whole suite of issue 13 in one command: full (the sizes in docs/benchmarks.md, under 15 minutes on the
/// 2-core VM) or smoke (tiny counts; only checks that every scenario runs). An optional list of scenario names
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

    /// <summary>The scenario names <see cref="RunAsync"/> accepts, in the order they run.</summary>
    public static IReadOnlyList<string> ScenarioNames => InOrder;

    /// <summary>The name that stands for the whole suite (all but memory-idle), as no name does.</summary>
    public const string All = "all";

    /// <summary>What is wrong with a list of scenario names, in words for the user; null when every name is a scenario.</summary>
    public static string? UnknownScenario(IEnumerable<string> names) =>
        names.FirstOrDefault(name => name != All && !InOrder.Contains(name, StringComparer.Ordinal)) is { } unknown
            ? $"'{unknown}' is not a scenario: name any of {string.Join(", ", InOrder)}, or none (or '{All}') for all but memory-idle."
            : null;

    /// <summary>
    /// The scenarios a list of names runs, in the order they run: the whole suite for none or <c>all</c> (which users
    /// type, as the bench program's verb reads), with memory-idle too when it is named beside it.
    /// </summary>
    internal static string[] Selected(IReadOnlyCollection<string> only) =>
        only.Count == 0 || only.Contains(All)
            ? [.. InOrder.Where(name => Scenarios.Contains(name) || only.Contains(name))]
            : [.. InOrder.Where(only.Contains)];

    /// <summary>
    /// Runs the named scenarios (all but memory-idle when none is named) and writes their tables to
    /// <paramref name="output"/> as Markdown. Returns 0 when every scenario ran, 1 when one failed (its error is in the
    /// output and the others still run).
    /// </summary>
    /// <param name="smoke">Tiny counts: checks that every scenario runs, in about a minute; the figures mean nothing.</param>
    /// <param name="only">Scenario names (<see cref="ScenarioNames"/>); empty or <see cref="All"/> for the whole suite.</param>
    /// <param name="output">Where the tables go.</param>
    /// <param name="host">How to start the server that runs in a process of its own.</param>
    /// <param name="cancellationToken">
    /// Stops the run between scenarios, or abandons the one under way: it is not stopped, and goes on writing to
    /// <paramref name="output"/> in the background. Meant for a program that ends when cancelled (the <c>lifeline</c>
    /// tool): the scenario's clients and hosts end with the process, and its server process, which serves only while
    /// its standard input is open, ends with it too.
    /// </param>
    /// <exception cref="ArgumentException">A name in <paramref name="only"/> is not a scenario.</exception>
    public static async Task<int> RunAsync(bool smoke, IReadOnlyCollection<string> only, TextWriter output, SuiteHostCommand host, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(only);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(host);
        if (UnknownScenario(only) is { } problem)
        {
            throw new ArgumentException(problem, nameof(only));
        }

        var settings = (smoke ? SuiteSettings.Smoke : SuiteSettings.Full) with { Host = host };
        var selected = Selected(only);
        await output.WriteLineAsync($"# Lifeline benchmark suite ({(smoke ? "smoke" : "full")}): {string.Join(", ", selected)}");
        await output.WriteLineAsync($"{RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, {Environment.ProcessorCount} cores, load average {LoadAverage()}\n");
        var total = Stopwatch.GetTimestamp();
        var failed = 0;
        for (var i = 0; i < selected.Length; i++)
        {
            var name = selected[i];
            cancellationToken.ThrowIfCancellationRequested();
            if (host.Log is { } log)
            {
                // A scenario's table comes only at its end (the throughput one after about 3 minutes): say what runs.
                await log.WriteLineAsync($"bench: {name} ({i + 1} of {selected.Length})");
            }

            var start = Stopwatch.GetTimestamp();
            try
            {
                await RunScenarioAsync(name, settings, output).WaitAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                failed++;
                await output.WriteLineAsync($"FAILED {name}: {e}");
            }

            await output.WriteLineAsync($"({name}: {Table.Format(Stopwatch.GetElapsedTime(start))}, load average {LoadAverage()})\n");
        }

        await output.WriteLineAsync($"suite: {Table.Format(Stopwatch.GetElapsedTime(total))}, {failed} scenario(s) failed");
        return failed == 0 ? 0 : 1;
    }

    private static Task RunScenarioAsync(string name, SuiteSettings settings, TextWriter output) => name switch
    {
        "throughput" => ThroughputScenario.RunAsync(settings, output),
        "echo" => EchoScenario.RunAsync(settings, output),
        "storm" => RestartStormScenario.RunAsync(settings, output),
        "deadlink" => DeadLinkScenario.RunAsync(settings, output),
        "memory-idle" => IdleMemoryScenario.RunAsync(settings, output, hold: false),
        _ => IdleMemoryScenario.RunAsync(settings, output, hold: true),
    };

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
