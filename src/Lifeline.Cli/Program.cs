using Lifeline.Cli;

// Ctrl-C and SIGTERM cancel the running command, which then closes its connections cleanly.
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
    System.Runtime.InteropServices.PosixSignal.SIGTERM,
    context =>
    {
        context.Cancel = true;
        stop.Cancel();
    });

return await LifelineCli.RunAsync(args, CliConsole.FromProcess(), stop.Token).ConfigureAwait(false);
