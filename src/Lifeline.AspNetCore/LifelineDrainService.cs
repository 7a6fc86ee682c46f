using Microsoft.Extensions.Hosting;

namespace Lifeline.AspNetCore;

/// <summary>
/// Runs the drain when the host begins to stop (SIGTERM, Ctrl-C, StopApplication), before Kestrel stops: the
/// lifecycle "stopping" step comes ahead of every service's StopAsync, so new upgrades still reach us and get 1012.
/// </summary>
internal sealed class LifelineDrainService(LifelineServer server) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => server.DrainAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
