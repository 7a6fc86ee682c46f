using System.Text;
using Spectre.Console;

namespace Lifeline.Cli;

/// <summary>Where a command reads and writes: the process's streams, or writers supplied by tests.</summary>
/// <remarks>
/// On a terminal, rich output takes the terminal's width and its styles and colours (none when <c>NO_COLOR</c> is set
/// or <c>TERM=dumb</c>). Anywhere else (a pipe, a file) nothing is wrapped, no escape codes are written, no line ends
/// in padding, and a JSON document is written on one line.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The token source has no timer and lives as long as the console, which is the process's.")]
internal sealed class CliConsole
{
    /// <summary>Width used when the output is not a terminal: wide enough that no real line wraps.</summary>
    internal const int UnwrappedWidth = 1 << 16;

    public CliConsole(TextWriter output, TextWriter error, Stream input, bool terminal = false, bool color = false)
    {
        Output = output;
        Error = error;
        Input = input;
        IsTerminal = terminal;
        Rich = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(terminal ? output : new TrailingSpaceTrimmingWriter(output)),
            Ansi = terminal && color ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal && color ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!terminal)
        {
            Rich.Profile.Width = UnwrappedWidth;
        }
    }

    /// <summary>Creates a console whose stdin holds <paramref name="input"/> (UTF-8).</summary>
    public CliConsole(TextWriter output, TextWriter error, string input = "")
        : this(output, error, new MemoryStream(Encoding.UTF8.GetBytes(input)))
    {
    }

    /// <summary>Plain output (JSON, markdown, event lines): written as is, never wrapped.</summary>
    public TextWriter Output { get; }

    /// <summary>Error messages and usage hints.</summary>
    public TextWriter Error { get; }

    /// <summary>The bytes on stdin (lines sent as messages by <c>connect</c>, commands typed into <c>proxy</c>).</summary>
    public Stream Input { get; }

    /// <summary>Whether stdout is a terminal (rich layout at the terminal's width) rather than a pipe or a file.</summary>
    public bool IsTerminal { get; }

    /// <summary>Rich output (tables, grids) on the same stream as <see cref="Output"/>.</summary>
    public IAnsiConsole Rich { get; }

    private readonly CancellationTokenSource _stopping = new();
    private int _stopExitCode;

    /// <summary>
    /// Cancelled when the command stops on its own deadline (<c>connect --max-time</c>): the process then ends it as it
    /// ends a command after Ctrl-C, also when a write waits on a full stdout pipe nobody reads.
    /// </summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>The exit code of the stop reported with <see cref="ReportStop"/>; 0 when none was.</summary>
    public int StopExitCode => Volatile.Read(ref _stopExitCode);

    /// <summary>The command stops on its own (its deadline passed) and will exit with <paramref name="exitCode"/>.</summary>
    public void ReportStop(int exitCode)
    {
        Interlocked.CompareExchange(ref _stopExitCode, exitCode, 0);
        _stopping.Cancel();
    }

    /// <summary>The process's streams; <paramref name="output"/> replaces <see cref="Console.Out"/> when given.</summary>
    public static CliConsole FromProcess(TextWriter? output = null)
    {
        var terminal = !Console.IsOutputRedirected;
        var color = terminal
            && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"))
            && Environment.GetEnvironmentVariable("TERM") != "dumb";
        return new CliConsole(output ?? Console.Out, Console.Error, Console.OpenStandardInput(), terminal, color);
    }

    /// <summary>A heading: a rule across a terminal, a plain line elsewhere.</summary>
    public void Heading(string markup)
    {
        if (IsTerminal)
        {
            Rich.Write(new Rule(markup).LeftJustified());
        }
        else
        {
            Rich.MarkupLine("── " + markup + " ──");
        }
    }
}
