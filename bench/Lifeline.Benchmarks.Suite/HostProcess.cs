using System.Diagnostics;
using System.Globalization;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// A <see cref="LifelineHost"/> in a child process (the program that runs the suite, started again as its
/// <see cref="SuiteHostCommand"/> says), so that what is
/// measured in this process is the clients alone: their heap (scenario 6) and their latency (scenario 3), without the
/// server's objects on the same heap or its work items on the same thread pool. The child answers "measure" (its
/// heap after a full collection) and "stop" (a graceful stop, and how long it took) on stdin; anything else ends it.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    private readonly Process _process;

    private HostProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    internal int Port { get; }

    internal Uri Uri(string path) => new($"ws://127.0.0.1:{Port}{path}");

    internal static async Task<HostProcess> StartAsync(SuiteHostCommand? command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var assembly = command.AssemblyPath;
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true, // passed on below: the child must not hold the caller's stderr open
            UseShellExecute = false,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add("--runtimeconfig");
        start.ArgumentList.Add(Path.ChangeExtension(assembly, ".runtimeconfig.json"));
        start.ArgumentList.Add(assembly);
        foreach (var argument in command.Arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_gcServer"] = "0";
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the host process");
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"bench server process: {e.Data}");
            }
        };
        process.BeginErrorReadLine();
        if (command.Log is { } log)
        {
            await log.WriteLineAsync($"bench: server process {process.Id.ToString(CultureInfo.InvariantCulture)} started");
        }

        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            if (line is null || !line.StartsWith("port ", StringComparison.Ordinal) || !int.TryParse(line.AsSpan(5), CultureInfo.InvariantCulture, out var port))
            {
                throw new InvalidOperationException($"the host process said: {line}");
            }

            return new HostProcess(process, port);
        }
        catch
        {
            // Whatever went wrong, the child must not outlive the scenario with its port.
            KillQuietly(process);
            process.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The <c>dotnet</c> host of the runtime this process runs on (found from the runtime's own directory, so neither
    /// PATH nor another installed SDK decides which runtime the server gets); <c>dotnet</c> from PATH when that layout
    /// is not there.
    /// </summary>
    private static string DotnetHost()
    {
        var name = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        var beside = Path.GetFullPath(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", name));
        return File.Exists(beside) ? beside : name;
    }

    /// <summary>The child's side: starts a <see cref="LifelineHost"/>, prints its port and answers on stdin.</summary>
    public static async Task<int> ServeAsync()
    {
        var host = await LifelineHost.StartAsync();
        Console.WriteLine($"port {host.Port}");
        while (await Console.In.ReadLineAsync() is { } line)
        {
            switch (line)
            {
                case "measure":
                    Console.WriteLine(IdleMemoryScenario.Measure().ToString(CultureInfo.InvariantCulture));
                    break;
                case "allocated":
                    Console.WriteLine(GC.GetTotalAllocatedBytes(precise: true).ToString(CultureInfo.InvariantCulture));
                    break;
                case "stop":
                    var start = Stopwatch.GetTimestamp();
                    await host.StopAsync();
                    Console.WriteLine(Stopwatch.GetElapsedTime(start).TotalMilliseconds.ToString(CultureInfo.InvariantCulture));
                    break;
                default:
                    await host.DisposeAsync();
                    return 0;
            }
        }

        await host.DisposeAsync();
        return 0;
    }

    internal async Task<long> MeasureAsync() => long.Parse(await AskAsync("measure"), CultureInfo.InvariantCulture);

    /// <summary>The bytes the host process has allocated so far (precise).</summary>
    internal async Task<long> AllocatedAsync() => long.Parse(await AskAsync("allocated"), CultureInfo.InvariantCulture);

    internal async Task<TimeSpan> StopAsync() => TimeSpan.FromMilliseconds(double.Parse(await AskAsync("stop"), CultureInfo.InvariantCulture));

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _process.StandardInput.WriteLineAsync("quit");
            _process.StandardInput.Close();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(40));
        }
        catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException)
        {
            // It did not stop by itself: stopped here below.
        }
        finally
        {
            KillQuietly(_process);
            _process.Dispose();
        }
    }

    private static void KillQuietly(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or AggregateException)
        {
            // Gone already, or not ours to stop: nothing more to do.
        }
    }

    private async Task<string> AskAsync(string command)
    {
        await _process.StandardInput.WriteLineAsync(command);
        await _process.StandardInput.FlushAsync();
        return await _process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) ?? throw new InvalidOperationException("the host process ended");
    }
}
