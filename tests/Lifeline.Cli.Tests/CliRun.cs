namespace Lifeline.Cli.Tests;

/// <summary>Runs the real command tree in-process with captured output.</summary>
internal sealed record CliRun(int ExitCode, string Output, string Error)
{
    public static async Task<CliRun> RunAsync(params string[] args) => await RunWithInputAsync(string.Empty, args);

    public static async Task<CliRun> RunWithInputAsync(string input, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await LifelineCli.RunAsync(args, new CliConsole(output, error, input));
        return new CliRun(exit, output.ToString(), error.ToString());
    }
}
