using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Lifeline.Cli.Serve;

/// <summary>
/// The lifetime of a host a command starts: the command stops it. The default console lifetime also handles Ctrl-C and
/// SIGTERM and marks every signal handled, so a second Ctrl-C could never end the process (Program.cs leaves the second
/// one to the runtime) while a host was up: during a drain, or the demo's clean-up, the user had to kill -9.
/// </summary>
internal sealed class CommandHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Replaces the console lifetime of a host the command stops itself.</summary>
    public static void Use(IServiceCollection services) => services.AddSingleton<IHostLifetime, CommandHostLifetime>();
}
