using System.CommandLine;
using Lifeline.Cli.Commands;

namespace Lifeline.Cli;

/// <summary>Builds the <c>lifeline</c> command tree and runs it with uniform error handling and exit codes.</summary>
internal static class LifelineCli
{
    public static RootCommand Build(CliConsole console)
    {
        var root = new RootCommand("Lifeline: keep WebSocket connections alive and lossless, and find out why they die.");
        root.Subcommands.Add(CatalogCommands.Explain(console));
        root.Subcommands.Add(CatalogCommands.Compare(console));
        root.Subcommands.Add(CatalogCommands.Codes(console));
        root.Subcommands.Add(ConnectCommand.Create(console));
        root.Subcommands.Add(ServeCommand.Create(console));
        root.Subcommands.Add(ProbeCommand.Create(console));
        root.Subcommands.Add(IdleScanCommand.Create(console));
        root.Subcommands.Add(ProxyCommand.Create(console));
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default)
    {
        var root = Build(console);
        var parseResult = root.Parse(args);
        if (parseResult.Errors.Count > 0)
        {
            foreach (var error in parseResult.Errors)
            {
                await console.Error.WriteLineAsync($"error: {error.Message}").ConfigureAwait(false);
            }

            await WriteHintAsync(console, parseResult.CommandResult.Command == root ? null : parseResult.CommandResult.Command.Name).ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        try
        {
            var configuration = new InvocationConfiguration { Output = console.Output, Error = console.Error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
            return await parseResult.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
        }
        catch (UsageException usage)
        {
            await console.Error.WriteLineAsync($"error: {usage.Message}").ConfigureAwait(false);
            await WriteHintAsync(console, usage.Command).ConfigureAwait(false);
            return ExitCodes.Usage;
        }
    }

    private static Task WriteHintAsync(CliConsole console, string? command) =>
        console.Error.WriteLineAsync(command is null
            ? "usage: lifeline COMMAND [ARGS] [OPTIONS]; run 'lifeline --help' to list the commands."
            : $"usage: run 'lifeline {command} --help' to see its arguments and options.");
}
