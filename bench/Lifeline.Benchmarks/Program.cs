using BenchmarkDotNet.Running;
using Lifeline.Benchmarks.Suite;

// dotnet run -c Release --project bench/Lifeline.Benchmarks -- all                 the whole suite (issue 13), < 15 min
// dotnet run -c Release --project bench/Lifeline.Benchmarks -- smoke               every scenario with tiny counts
// dotnet run -c Release --project bench/Lifeline.Benchmarks -- all storm echo      only the named scenarios
// dotnet run -c Release --project bench/Lifeline.Benchmarks -- all memory-idle     per-connection memory only (no 10,000-connection hold)
// dotnet run -c Release --project bench/Lifeline.Benchmarks -- --filter '*'        the BenchmarkDotNet classes
// dotnet run -c Release --project bench/Lifeline.Benchmarks -- session-faults 100000 42
// dotnet run -c Release --project bench/Lifeline.Benchmarks -- redis-node 20 2000  one node: Redis store beside in-memory
switch (args)
{
    case ["session-faults", ..]:
        return await Lifeline.Benchmarks.SessionFaultRunner.RunAsync(args[1..]);
    case ["redis-node", ..]:
        return await Lifeline.Benchmarks.RedisNodeRunner.RunAsync(args[1..], Console.Out);
    case ["all" or "smoke", ..]:
        if (SuiteRunner.UnknownScenario(args[1..]) is { } problem)
        {
            await Console.Error.WriteLineAsync(problem);
            return 2;
        }

        return await SuiteRunner.RunAsync(args[0] == "smoke", args[1..], Console.Out, SuiteHost);

    case ["host-process", ..]:
        return await HostProcess.ServeAsync(args[1..]);
}

// Non-zero when a benchmark failed to build or run, or its setup was refused, so a script running this can tell.
var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;

/// <summary>Entry point type for BenchmarkSwitcher.</summary>
public partial class Program
{
    /// <summary>The suite's server process is this program again, in <c>host-process</c> mode.</summary>
    public static SuiteHostCommand SuiteHost { get; } = new(typeof(Program).Assembly.Location, ["host-process"]);
}
