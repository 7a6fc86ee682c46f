using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Lifeline.Packaging.Tests;

/// <summary>Runs <c>dotnet</c> commands for the packaging tests, isolated from the test host's MSBuild environment.</summary>
internal static class DotnetProcess
{
    /// <summary>
    /// Runs <c>dotnet ARGS</c> with its output in a log file (build servers it starts may outlive it and keep a pipe
    /// open; a file cannot hang us). Returns the exit code and the log.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string workingDirectory, TimeSpan timeout, params string[] args)
    {
        var log = Path.Combine(Path.GetTempPath(), $"lifeline-pack-{Guid.NewGuid():N}.log");
        var start = new ProcessStartInfo("/bin/sh") { WorkingDirectory = workingDirectory, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec dotnet \"$@\" >\"$LIFELINE_TEST_LOG\" 2>&1 </dev/null");
        start.ArgumentList.Add("dotnet");
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        Prepare(start);
        start.Environment["LIFELINE_TEST_LOG"] = log;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start dotnet");
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', args)} did not finish within {timeout}:\n{ReadLog(log)}");
        }

        var output = ReadLog(log);
        File.Delete(log);
        return (process.ExitCode, output);
    }

    /// <summary>Runs <c>dotnet ARGS</c> and fails the test with its output unless it exits with 0.</summary>
    public static async Task<string> RunCheckedAsync(string workingDirectory, TimeSpan timeout, params string[] args)
    {
        var (exitCode, output) = await RunAsync(workingDirectory, timeout, args);
        Assert.True(exitCode == 0, $"dotnet {string.Join(' ', args)} exited with {exitCode}:\n{output}");
        return output;
    }

    /// <summary>
    /// A child's environment without what <c>dotnet test</c> set for its own MSBuild, so a nested build resolves its SDK
    /// as a user's would.
    /// </summary>
    public static void Prepare(ProcessStartInfo start)
    {
        foreach (var name in start.Environment.Keys.ToList())
        {
            if (name.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || name.Equals("MSBuildExtensionsPath", StringComparison.OrdinalIgnoreCase)
                || name.Equals("MSBuildSDKsPath", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase))
            {
                start.Environment.Remove(name);
            }
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
    }

    /// <summary>Sends SIGTERM (a graceful stop: the server drains with 1012, the client closes with 1000).</summary>
    public static void Terminate(Process process)
    {
        const int SigTerm = 15;
        if (Kill(process.Id, SigTerm) != 0)
        {
            throw new InvalidOperationException($"kill({process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private static string ReadLog(string path) => File.Exists(path) ? File.ReadAllText(path) : "(no output)";

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
