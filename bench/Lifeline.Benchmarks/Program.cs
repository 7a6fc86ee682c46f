using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Lifeline.Benchmarks -- --filter '*'
// dotnet run -c Release --project bench/Lifeline.Benchmarks -- session-faults 100000 42
if (args is ["session-faults", ..])
{
    return await Lifeline.Benchmarks.SessionFaultRunner.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

/// <summary>Entry point type for BenchmarkSwitcher.</summary>
public partial class Program;
