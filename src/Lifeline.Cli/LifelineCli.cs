using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Lifeline.Cli.Commands;

namespace Lifeline.Cli;

/// <summary>Builds the <c>lifeline</c> command tree and runs it with uniform error handling and exit codes.</summary>
internal static class LifelineCli
{
    public const string ToolName = "lifeline";

    public static Command Build(CliConsole console)
    {
        // A plain command rather than RootCommand, whose name is the executable's file name (Lifeline.Cli).
        var root = new Command(ToolName, "Lifeline: keep WebSocket connections alive and lossless, and find out why they die.")
        {
            new HelpOption(),
            new VersionOption(),
        };
        root.Subcommands.Add(CatalogCommands.Explain(console));
        root.Subcommands.Add(CatalogCommands.Compare(console));
        root.Subcommands.Add(CatalogCommands.Codes(console));
        root.Subcommands.Add(ConnectCommand.Create(console));
        root.Subcommands.Add(ServeCommand.Create(console));
        root.Subcommands.Add(ProbeCommand.Create(console));
        root.Subcommands.Add(IdleScanCommand.Create(console));
        root.Subcommands.Add(ProxyCommand.Create(console));
        root.Subcommands.Add(Demo.DemoCommand.Create(console));
        root.Subcommands.Add(BenchCommand.Create(console));
        AddExitCodesToHelp(root);
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default)
    {
        var root = Build(console);
        // No response files: lifeline takes no @file arguments, and the expansion threw out of the parser on a token such as
        // '@/' (a directory) instead of reporting it as input.
        var parseResult = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parseResult.Errors.Count > 0 && parseResult.Action is not (HelpAction or HelpWithExitCodes))
        {
            var command = parseResult.CommandResult.Command;
            if (command == root && parseResult.UnmatchedTokens is [var typed, ..] && !typed.StartsWith('-'))
            {
                // A mistyped command: one line about it, and the closest command, rather than every follow-on error.
                await console.Error.WriteLineAsync($"error: '{typed}' is not a {ToolName} command.").ConfigureAwait(false);
                if (Suggest(root, parseResult.UnmatchedTokens) is { } suggestion)
                {
                    await console.Error.WriteLineAsync(suggestion).ConfigureAwait(false);
                }
            }
            else
            {
                foreach (var error in parseResult.Errors)
                {
                    await console.Error.WriteLineAsync($"error: {error.Message}").ConfigureAwait(false);
                }
            }

            await WriteHintAsync(console, command == root ? null : command.Name).ConfigureAwait(false);
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
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return ExitCodes.Interrupted;
        }
#pragma warning disable CA1031 // The last line of defence: a bug must not print a stack trace at the user.
        catch (Exception e)
#pragma warning restore CA1031
        {
            await console.Error.WriteLineAsync($"error: {e.Message} ({e.GetType().Name}; this is a bug in lifeline, please report it)").ConfigureAwait(false);
            if (Environment.GetEnvironmentVariable("LIFELINE_DEBUG") is { Length: > 0 })
            {
                await console.Error.WriteLineAsync(e.ToString()).ConfigureAwait(false);
            }

            return ExitCodes.Failure;
        }
    }

    /// <summary>"did you mean 'connect'?" for a mistyped command name.</summary>
    internal static string? Suggest(Command root, IReadOnlyList<string> unmatched)
    {
        if (unmatched.Count == 0 || unmatched[0].StartsWith('-'))
        {
            return null;
        }

        var typed = unmatched[0].ToLowerInvariant();
        var best = root.Subcommands
            .Select(c => (c.Name, Distance: Distance(typed, c.Name)))
            .OrderBy(c => c.Distance)
            .First();
        return best.Distance <= Math.Max(2, typed.Length / 3) ? $"did you mean '{ToolName} {best.Name}'?" : null;
    }

    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            previous = current;
        }

        return previous[b.Length];
    }

    private static void AddExitCodesToHelp(Command root)
    {
        var help = root.Options.OfType<HelpOption>().Single();
        if (help.Action is HelpAction original)
        {
            help.Action = new HelpWithExitCodes(original);
        }
    }

    private static Task WriteHintAsync(CliConsole console, string? command) =>
        console.Error.WriteLineAsync(command is null
            ? $"usage: {ToolName} COMMAND [ARGS] [OPTIONS]; run '{ToolName} --help' to list the commands."
            : $"usage: run '{ToolName} {command} --help' to see its arguments and options.");

    private sealed class HelpWithExitCodes(HelpAction original) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            original.Invoke(parseResult);
            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine(ExitCodes.Help);
            output.WriteLine();
            return ExitCodes.Success;
        }
    }
}
