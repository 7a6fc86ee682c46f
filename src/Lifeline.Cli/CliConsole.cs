using Spectre.Console;

namespace Lifeline.Cli;

/// <summary>Where a command reads and writes: the process's streams, or writers supplied by tests.</summary>
internal sealed class CliConsole
{
    public CliConsole(TextWriter output, TextWriter error, TextReader input, bool interactive = false)
    {
        Output = output;
        Error = error;
        Input = input;
        Rich = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!interactive)
        {
            Rich.Profile.Width = 120;
        }
    }

    /// <summary>Plain output (JSON, markdown).</summary>
    public TextWriter Output { get; }

    /// <summary>Error messages and usage hints.</summary>
    public TextWriter Error { get; }

    /// <summary>Lines typed by the user (sent as messages by <c>connect</c>).</summary>
    public TextReader Input { get; }

    /// <summary>Rich output (tables, rules) on the same stream as <see cref="Output"/>.</summary>
    public IAnsiConsole Rich { get; }

    public static CliConsole FromProcess() =>
        new(Console.Out, Console.Error, Console.In, interactive: !Console.IsOutputRedirected);
}
