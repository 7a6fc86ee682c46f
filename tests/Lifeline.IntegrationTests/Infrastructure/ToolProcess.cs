using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>
/// Runs the built <c>lifeline</c> tool as a real child process: stdin is a pipe that stays open until
/// <see cref="CloseInput"/>, stdout and stderr are pipes captured byte for byte, signals are real signals.
/// </summary>
internal sealed class ToolProcess : IAsyncDisposable
{
    public const int SIGINT = 2;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _error = new();
    private readonly Task _pumps;
    private TaskCompletionSource _outputRead = Open();

    private ToolProcess(Process process)
    {
        _process = process;
        _pumps = Task.WhenAll(PumpAsync(process.StandardOutput, _output, () => Volatile.Read(ref _outputRead).Task), PumpAsync(process.StandardError, _error, static () => Task.CompletedTask));
        Exit = WaitForExitAsync();
        Ended = _process.WaitForExitAsync();
    }

    /// <summary>The process ended, whether or not its output was read to the end (see <see cref="Exit"/>).</summary>
    public Task Ended { get; }

    public int ExitCode => _process.ExitCode;

    /// <summary>
    /// Stops reading stdout, as a script that never reads it does: once the pipe and the reader's buffers are full (a
    /// few tens of KB), the tool's writes to stdout wait. <see cref="ResumeOutput"/> reads on.
    /// </summary>
    public void PauseOutput() => Volatile.Write(ref _outputRead, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public void ResumeOutput() => Volatile.Read(ref _outputRead).TrySetResult();

    public int Id => _process.Id;

    /// <summary>The exit code, once the process ended and its output was read to the end.</summary>
    public Task<int> Exit { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public string Error
    {
        get
        {
            lock (_error)
            {
                return _error.ToString();
            }
        }
    }

    /// <summary>Every complete line of stdout parsed as JSON (each line must be one whole document).</summary>
    public IReadOnlyList<JsonElement> JsonLines => ParseJsonLines(Output);

    public StreamWriter Input => _process.StandardInput;

    /// <summary>Starts the tool; <paramref name="environment"/> entries with a null value are removed.</summary>
    public static ToolProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        var appHost = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "Lifeline.Cli.exe" : "Lifeline.Cli");
        if (File.Exists(appHost))
        {
            info.FileName = appHost;
        }
        else
        {
            info.FileName = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Lifeline.Cli.dll"));
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        // A test run started in the background of a non-interactive shell inherits SIGINT as ignored, and so would the
        // tool: start it through env(1) with SIGINT back to its default, as a terminal would deliver Ctrl-C. env execs,
        // so the process id is the tool's.
        if (File.Exists("/usr/bin/env") && !OperatingSystem.IsWindows())
        {
            info.ArgumentList.Insert(0, info.FileName);
            info.ArgumentList.Insert(0, "--default-signal=INT");
            info.FileName = "/usr/bin/env";
        }

        info.Environment.Remove("NO_COLOR");
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start lifeline");
        process.StandardInput.AutoFlush = true;
        return new ToolProcess(process);
    }

    public static ToolProcess Start(params string[] args) => Start((IEnumerable<string>)args);

    /// <summary>The tool's command line for a POSIX shell, each part single-quoted.</summary>
    public static string ShellCommand(params string[] args)
    {
        var appHost = Path.Combine(AppContext.BaseDirectory, "Lifeline.Cli");
        string[] parts = File.Exists(appHost)
            ? [appHost, .. args]
            : [Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", Path.Combine(AppContext.BaseDirectory, "Lifeline.Cli.dll"), .. args];
        return string.Join(' ', parts.Select(part => "'" + part.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
    }

    /// <summary>Runs the tool with stdin closed at once and waits for it to end.</summary>
    public static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        await using var tool = Start(args);
        tool.CloseInput();
        var exit = await tool.Exit.WaitAsync(TimeSpan.FromSeconds(60));
        return (exit, tool.Output, tool.Error);
    }

    /// <summary>Sends a real signal to the process (SIGINT is what Ctrl-C sends).</summary>
    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public void CloseInput() => _process.StandardInput.Close();

    public Task WaitForOutputAsync(string text, TimeSpan? timeout = null) =>
        Wait.UntilAsync(() => Output.Contains(text, StringComparison.Ordinal) || _process.HasExited && Output.Contains(text, StringComparison.Ordinal),
            timeout ?? TimeSpan.FromSeconds(30), $"'{text}' on stdout (stdout so far: {Tail(Output)}; stderr: {Tail(Error)})");

    public Task WaitForEventAsync(string name, TimeSpan? timeout = null) =>
        Wait.UntilAsync(() => JsonLines.Any(line => line.GetProperty("event").GetString() == name),
            timeout ?? TimeSpan.FromSeconds(30), $"a '{name}' event (stdout so far: {Tail(Output)}; stderr: {Tail(Error)})");

    /// <summary>Every complete, non-empty line of <paramref name="text"/> parsed as one JSON document; a last line without its newline is left out.</summary>
    public static IReadOnlyList<JsonElement> ParseJsonLines(string text) =>
        [.. CompleteLines(text).Where(line => line.Length > 0).Select(line => JsonDocument.Parse(line).RootElement.Clone())];

    /// <summary>The lines of <paramref name="text"/> that ended with a line break (a line still being written is left out).</summary>
    public static IEnumerable<string> CompleteLines(string text)
    {
        var lines = text.Split('\n');
        return lines[..^1].Select(line => line.TrimEnd('\r'));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            ResumeOutput(); // the output is read to the end before Exit completes

            await Exit.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
        }

        _process.Dispose();
    }

    private static string Tail(string text) => text.Length > 500 ? "..." + text[^500..] : text;

    private static TaskCompletionSource Open()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder into, Func<Task> mayRead)
    {
        var buffer = new char[16 * 1024];
        while (true)
        {
            await mayRead();
            var read = await reader.ReadAsync(buffer);
            if (read == 0)
            {
                return;
            }

            lock (into)
            {
                into.Append(buffer, 0, read);
            }
        }
    }

    private async Task<int> WaitForExitAsync()
    {
        await _process.WaitForExitAsync();
        await _pumps;
        return _process.ExitCode;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
