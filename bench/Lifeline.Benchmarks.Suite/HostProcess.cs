using System.Diagnostics;
using System.Globalization;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// A <see cref="LifelineHost"/> in a child process (the program that runs the suite, started again as its
/// <see cref="SuiteHostCommand"/> says), so that what is
/// measured in this process is the clients alone: their heap (scenario 6) and their latency (scenario 3), without the
/// server's objects on the same heap or its work items on the same thread pool. The child answers "measure" (its
/// heap after a full collection) and "stop" (a graceful stop, and how long it took) on stdin; for the restart storm also
/// "origin T" (count upgrades from the Stopwatch timestamp T), "upgrades", "received-count" and "received" (its
/// <see cref="HostCounters"/>); anything else ends it.
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

    /// <summary>Starts the child with a host on a free port, or as <paramref name="storm"/> says.</summary>
    internal static async Task<HostProcess> StartAsync(SuiteHostCommand? command, StormHost? storm = null)
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
        foreach (var argument in command.Arguments.Concat(storm?.Arguments() ?? []))
        {
            start.ArgumentList.Add(argument);
        }

        // The storm's host collects as an ASP.NET Core app does by default (server GC: Microsoft.NET.Sdk.Web turns it
        // on), and pauses far less with 5,000 connections on its heap (84-240 ms in all over a restart, against
        // 374-829 ms with the workstation GC here, in probe runs); a pause holds back the accepts and bunches the upgrades behind it.
        // Echo and memory keep the workstation GC, which their figures were taken with.
        start.Environment["DOTNET_gcServer"] = storm is null ? "0" : "1";
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the host process");
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"bench server process: {e.Data}");
            }
        };
        process.BeginErrorReadLine();
        try
        {
            if (command.Log is { } log)
            {
                await log.WriteLineAsync($"bench: server process {process.Id.ToString(CultureInfo.InvariantCulture)} started");
            }

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

    /// <summary>
    /// The child's side: starts a <see cref="LifelineHost"/>, prints its port and answers on stdin.
    /// <paramref name="arguments"/> are what follows the program's own marker (<see cref="StormHost.Arguments"/>).
    /// </summary>
    public static async Task<int> ServeAsync(IReadOnlyList<string> arguments)
    {
        var storm = StormHost.Parse(arguments);
        var counters = storm is null ? null : new HostCounters();
        if (storm?.BucketOrigin is { } origin)
        {
            counters!.ResetBuckets(origin);
        }

        var host = await LifelineHost.StartAsync(storm?.Port ?? 0, counters, storm?.DrainFile);
        Console.WriteLine($"port {host.Port}");
        while (await Console.In.ReadLineAsync() is { } line)
        {
            switch (line.Split(' ', 2))
            {
                case ["measure"]:
                    Console.WriteLine(IdleMemoryScenario.Measure().ToString(CultureInfo.InvariantCulture));
                    break;
                case ["cost"]:
                    Console.WriteLine(ProcessCost.Now().ToString());
                    break;
                case ["stop"]:
                    var start = Stopwatch.GetTimestamp();
                    await host.StopAsync();
                    Console.WriteLine(Stopwatch.GetElapsedTime(start).TotalMilliseconds.ToString(CultureInfo.InvariantCulture));
                    break;
                case ["origin", var timestamp] when counters is not null:
                    counters.ResetBuckets(long.Parse(timestamp, CultureInfo.InvariantCulture));
                    Console.WriteLine("ok");
                    break;
                case ["upgrades"] when counters is not null:
                    Console.WriteLine(string.Join(' ', counters.UpgradesPer100Ms.Select(p => FormattableString.Invariant($"{p.Key}:{p.Value}"))));
                    break;
                case ["received-count"] when counters is not null:
                    Console.WriteLine(counters.Records.ToString(CultureInfo.InvariantCulture));
                    break;
                case ["received"] when counters is not null:
                    // Session ids are GUIDs ("N"): no space or slash in them.
                    Console.WriteLine(string.Join(' ', counters.Received.Keys.Select(k => FormattableString.Invariant($"{k.Session}/{k.Number}"))));
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

    /// <summary>The host process's allocations and thread-pool work items so far.</summary>
    internal async Task<ProcessCost> CostAsync() => ProcessCost.Parse(await AskAsync("cost"));

    /// <summary>Counts the host's upgrades from the Stopwatch timestamp <paramref name="origin"/>, forgetting those before.</summary>
    internal async Task SetBucketOriginAsync(long origin) => _ = await AskAsync(FormattableString.Invariant($"origin {origin}"));

    /// <summary>The host's upgrade requests per 100 ms since its origin.</summary>
    internal async Task<Dictionary<long, int>> UpgradesAsync() =>
        (await AskAsync("upgrades")).Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split(':'))
            .ToDictionary(p => long.Parse(p[0], CultureInfo.InvariantCulture), p => int.Parse(p[1], CultureInfo.InvariantCulture));

    /// <summary>The numbered messages the host received, repeats included.</summary>
    internal async Task<long> ReceivedCountAsync() => long.Parse(await AskAsync("received-count"), CultureInfo.InvariantCulture);

    /// <summary>The distinct (session, number) pairs the host received.</summary>
    internal async Task<IEnumerable<(string Session, int Number)>> ReceivedAsync() =>
        (await AskAsync("received")).Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('/'))
            .Select(p => (p[0], int.Parse(p[1], CultureInfo.InvariantCulture)));

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
