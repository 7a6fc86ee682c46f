using System.Text.Json;
using Lifeline.Cli;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>Runs a long-lived <c>lifeline</c> command in-process with captured, thread-safe output.</summary>
internal sealed class CliProcess : IAsyncDisposable
{
    private readonly CapturedText _output = new();
    private readonly CapturedText _error = new();
    private readonly CancellationTokenSource _stop = new();

    private CliProcess(string input, string[] args)
    {
        var console = new CliConsole(_output.Writer, _error.Writer, input);
        Exit = Task.Run(() => LifelineCli.RunAsync(args, console, _stop.Token));
    }

    public Task<int> Exit { get; }

    public string Output => _output.ToString();

    public string Error => _error.ToString();

    /// <summary>The complete JSON lines printed so far; a line still being written is left for the next look.</summary>
    public IReadOnlyList<JsonElement> JsonLines => ToolProcess.ParseJsonLines(Output);

    public static CliProcess Start(string input, params string[] args) => new(input, args);

    /// <summary>Stdout becomes a full pipe that nobody reads: every write to it waits until <see cref="ResumeOutput"/>.</summary>
    public void StallOutput() => _output.Stall();

    public void ResumeOutput() => _output.Resume();

    /// <summary>Sends the equivalent of Ctrl-C.</summary>
    public void Interrupt() => _stop.Cancel();

    public Task WaitForEventAsync(string name, TimeSpan? timeout = null) =>
        Wait.UntilAsync(() => JsonLines.Any(line => line.GetProperty("event").GetString() == name), timeout, $"a '{name}' event");

    public async ValueTask DisposeAsync()
    {
        _output.Resume(); // a stalled write must not hold the command's exit
        _stop.Cancel();
        try
        {
            await Exit.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
