using System.Runtime.InteropServices;
using Lifeline.Benchmarks.Suite;
using Lifeline.Cli;
using Lifeline.Cli.Commands;

if (args is [BenchCommand.HostProcessArgument, ..])
{
    // `lifeline bench` started this process as its server: it serves until its standard input ends.
    return await HostProcess.ServeAsync(args[1..]).ConfigureAwait(false);
}

// Ctrl-C and SIGTERM cancel the running command, which then closes its connections cleanly and ends at once,
// whatever stdin is doing. A second signal ends the process without waiting.
using var stop = new CancellationTokenSource();
var signal = 0;
void OnSignal(PosixSignalContext context)
{
    if (Interlocked.CompareExchange(ref signal, context.Signal == PosixSignal.SIGTERM ? 15 : 2, 0) != 0)
    {
        return; // second signal: let the runtime end the process
    }

    context.Cancel = true;
    stop.Cancel();
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

// A pipe on stdout whose reader goes away (`| head -n 2`) stops the command as SIGPIPE would stop a C program.
using var stdout = StdoutPipeWriter.TryOpen(TimeProvider.System);
if (stdout is not null)
{
    stdout.Closed += () =>
    {
        if (Interlocked.CompareExchange(ref signal, 13, 0) == 0)
        {
            stop.Cancel();
        }
    };
}

var console = CliConsole.FromProcess(stdout);
var exit = await RunUntilStoppedAsync(LifelineCli.RunAsync(args, console, stop.Token)).ConfigureAwait(false);
try
{
    // Bounded: a write still blocked on a stdout nobody reads (a full pipe) holds the writer's lock, and the process
    // must end all the same.
    await Task.Run(() => console.Output.Flush()).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false); // every write is flushed already: nothing is lost
}
catch (TimeoutException)
{
    // Ends without it.
}

return (exit, Volatile.Read(ref signal)) switch
{
    (ExitCodes.Interrupted, 15) => ExitCodes.Terminated,
    (ExitCodes.Interrupted, 13) => ExitCodes.OutputClosed,
    _ => exit,
};

// The command's exit code; after a stop (a signal, or the command's own deadline), also the end of a command stuck
// writing to a full stdout pipe that nobody reads (its last lines could never be read anyway), which would otherwise
// ignore Ctrl-C and --max-time. A command that copes with a full pipe itself (proxy's queued lines) has the grace to end
// on its own first; one that cannot (serve's "draining" line before its drain) ends without the rest of its work, as it
// could never have done it.
async Task<int> RunUntilStoppedAsync(Task<int> running)
{
    var grace = TimeSpan.FromSeconds(5);
    var stuck = TimeSpan.FromSeconds(2); // a write waiting this long on the pipe is not going anywhere
    using var stopped = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, console.Stopping);
    await Task.WhenAny(running, Task.Delay(Timeout.Infinite, stopped.Token)).ConfigureAwait(false);
    await Task.WhenAny(running, Task.Delay(grace)).ConfigureAwait(false);
    while (!running.IsCompleted)
    {
        if (stdout is not null && stdout.WaitingFor > stuck)
        {
            return stop.IsCancellationRequested || console.StopExitCode == 0 ? ExitCodes.Interrupted : console.StopExitCode;
        }

        await Task.WhenAny(running, Task.Delay(TimeSpan.FromMilliseconds(100))).ConfigureAwait(false);
    }

    return await running.ConfigureAwait(false);
}
