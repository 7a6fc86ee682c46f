namespace Lifeline.Cli;

/// <summary>Bad input from the user: reported with a usage hint and exit code 2, never a stack trace.</summary>
internal sealed class UsageException(string message, string? command = null) : Exception(message)
{
    /// <summary>The command whose help the hint points to.</summary>
    public string? Command { get; } = command;
}
