using System.CommandLine;
using System.Diagnostics;
using System.Reflection;
using Lifeline.Benchmarks.Suite;
using Lifeline.Client;

namespace Lifeline.Cli.Commands;

/// <summary>
/// <c>lifeline bench</c>: the benchmark suite of docs/benchmarks.md (Lifeline beside a raw <c>ClientWebSocket</c> and
/// Websocket.Client, each scenario with its baselines in the same run) on 127.0.0.1, its tables on stdout as Markdown.
/// </summary>
internal static class BenchCommand
{
    /// <summary>
    /// The only argument with which the tool serves as the suite's server process (echo and memory measure the clients
    /// alone, so their server runs apart) instead of reading a command line. Not a command: nobody types it.
    /// </summary>
    public const string HostProcessArgument = "--bench-host-process";

    public static Command Create(CliConsole console)
    {
        var scenarios = new Argument<string[]>("scenario")
        {
            Description = $"Scenarios to run, in this order: {string.Join(", ", SuiteRunner.ScenarioNames)} (default, or 'all': all but memory-idle, about 8 minutes on 2 cores).",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var smoke = new Option<bool>("--smoke")
        {
            Description = "Tiny counts: checks in about a minute that every scenario runs; its figures mean nothing.",
        };
        var command = new Command("bench", "Run the benchmark suite: Lifeline beside a raw ClientWebSocket and Websocket.Client on 127.0.0.1, tables on stdout as Markdown.")
        {
            scenarios, smoke,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var names = result.GetValue(scenarios) ?? [];
            if (SuiteRunner.UnknownScenario(names) is { } problem)
            {
                throw new UsageException(problem, "bench");
            }

            if (IsUnoptimized(typeof(LifelineClient).Assembly))
            {
                await console.Error.WriteLineAsync("warning: Lifeline was built without optimisations (a Debug build): its figures say little. Build with -c Release, or run the installed tool.").ConfigureAwait(false);
            }

            var host = new SuiteHostCommand(typeof(BenchCommand).Assembly.Location, [HostProcessArgument]) { Log = console.Error };
            try
            {
                var exit = await SuiteRunner.RunAsync(result.GetValue(smoke), names, console.Output, host, cancellationToken).ConfigureAwait(false);
                return exit == 0 ? ExitCodes.Success : ExitCodes.Failure;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await console.Error.WriteLineAsync("bench interrupted: its servers and clients end with this process.").ConfigureAwait(false);
                throw;
            }
        });
        return command;
    }

    private static bool IsUnoptimized(Assembly assembly) => assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled ?? false;
}
