using System.Text;
using System.Text.Json;
using Lifeline.Cli;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>Runs a long-lived <c>lifeline</c> command in-process with captured, thread-safe output.</summary>
internal sealed class CliProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _error = new();
    private readonly CancellationTokenSource _stop = new();

    private CliProcess(string input, string[] args)
    {
        var console = new CliConsole(TextWriter.Synchronized(new StringWriter(_output)), TextWriter.Synchronized(new StringWriter(_error)), input);
        Exit = Task.Run(() => LifelineCli.RunAsync(args, console, _stop.Token));
    }

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

    public string Error => _error.ToString();

    /// <summary>The JSON lines printed so far.</summary>
    public IReadOnlyList<JsonElement> JsonLines =>
        [.. Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement.Clone())];

    public static CliProcess Start(string input, params string[] args) => new(input, args);

    /// <summary>Sends the equivalent of Ctrl-C.</summary>
    public void Interrupt() => _stop.Cancel();

    public Task WaitForEventAsync(string name, TimeSpan? timeout = null) =>
        Wait.UntilAsync(() => JsonLines.Any(line => line.GetProperty("event").GetString() == name), timeout, $"a '{name}' event");

    public async ValueTask DisposeAsync()
    {
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
