namespace Lifeline.Cli;

/// <summary>The process exit codes of every <c>lifeline</c> command; <see cref="Help"/> is printed by <c>--help</c>.</summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked (or the connection ended normally).</summary>
    public const int Success = 0;

    /// <summary>The command ran but the outcome was a failure (cannot listen, a probe or scan failed).</summary>
    public const int Failure = 1;

    /// <summary>The command line was wrong: unknown command or code, missing argument, bad option value.</summary>
    public const int Usage = 2;

    /// <summary><c>connect</c> never got a connection open (refused, unresolvable name, not a WebSocket endpoint, retries spent).</summary>
    public const int CouldNotConnect = 3;

    /// <summary><c>connect</c> was connected and the reconnect policy ended it (a close code it does not retry, or retries spent).</summary>
    public const int ClosedByPolicy = 4;

    /// <summary><c>connect --max-time</c> ran out.</summary>
    public const int TimedOut = 5;

    /// <summary>Interrupted by Ctrl-C (SIGINT) before the work was done: 128 + 2.</summary>
    public const int Interrupted = 130;

    /// <summary>Ended by SIGTERM before the work was done: 128 + 15.</summary>
    public const int Terminated = 143;

    /// <summary>Stopped because the reader of its stdout pipe went away (<c>| head</c>) before the work was done, as SIGPIPE would end it: 128 + 13.</summary>
    public const int OutputClosed = 141;

    public const string Help =
        """
        Exit codes:
          0    success; connect: closed normally (1000) or stdin ended; serve and proxy: stopped by Ctrl-C/SIGTERM
          1    failure: cannot listen, the probe or scan failed, a bench scenario failed, a demo session client lost or
               duplicated a message (or the demo could not start), an unexpected error
          2    usage error: unknown command, bad argument or option value
          3    connect: could not connect (refused, name not resolved, not a WebSocket endpoint, --retries spent)
          4    connect: closed by the reconnect policy (a close code it does not retry, or --retries spent after a connection)
          5    connect: --max-time reached
          130  interrupted by Ctrl-C (SIGINT) before the work was done (connect, idle-scan, probe, demo, bench)
          141  stopped because the reader of stdout went away, a pipe into head, say (connect, idle-scan, probe, demo,
               bench; serve and proxy stop and exit 0)
          143  ended by SIGTERM before the work was done (connect, idle-scan, probe, demo, bench)
        """;
}
