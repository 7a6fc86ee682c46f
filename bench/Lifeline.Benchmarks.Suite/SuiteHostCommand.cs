namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// How the suite starts the server that runs in a process of its own (<see cref="HostProcess"/>): the entry assembly to
/// run with <c>dotnet exec</c>, and the arguments on which that program calls <see cref="HostProcess.ServeAsync"/>. The
/// bench program and the <c>lifeline</c> tool each name themselves here.
/// </summary>
/// <param name="AssemblyPath">The program's main assembly; its <c>.runtimeconfig.json</c> lies beside it.</param>
/// <param name="Arguments">What makes that program serve as the suite's host.</param>
public sealed record SuiteHostCommand(string AssemblyPath, IReadOnlyList<string> Arguments)
{
    /// <summary>
    /// Where to say what runs: each scenario as it starts ("bench: echo (2 of 5)") and each server process started
    /// ("bench: server process 1234 started"). None by default.
    /// </summary>
    public TextWriter? Log { get; init; }
}
