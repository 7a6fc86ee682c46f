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

var exit = await LifelineCli.RunAsync(args, CliConsole.FromProcess(), stop.Token).ConfigureAwait(false);
try
{
    // Bounded: a write still blocked on a stdout nobody reads (a full pipe) holds Console.Out's lock, and the process
    // must end all the same.
    await Task.Run(() => Console.Out.Flush()).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false); // Console.Out flushes every write: nothing is lost
}
catch (TimeoutException)
{
    // Ends without it.
}

return exit == ExitCodes.Interrupted && Volatile.Read(ref signal) == 15 ? ExitCodes.Terminated : exit;
