namespace Lifeline.Cli;

/// <summary>The process exit codes of every <c>lifeline</c> command.</summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked (or the connection ended normally).</summary>
    public const int Success = 0;

    /// <summary>The command ran but the outcome was a failure (a policy stop, an unreachable endpoint).</summary>
    public const int Failure = 1;

    /// <summary>The command line was wrong: unknown code, missing argument, bad option value.</summary>
    public const int Usage = 2;
}
