using Microsoft.Extensions.Hosting;

namespace Lifeline.AspNetCore;

/// <summary>
/// Loads the drain file before the server starts, and on shutdown waits for the drain (the 1012 closes, see
/// <see cref="LifelineServer.DrainAsync"/>, which returns the same drain to every caller) before saving the sessions.
/// </summary>
internal sealed class SessionDrainService(LifelineSessionManager manager, LifelineServer server) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => manager.LoadOnStartAsync(cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        manager.StartBackground();
        return Task.CompletedTask;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await server.DrainAsync(cancellationToken).ConfigureAwait(false);
        await manager.SaveOnDrainAsync(cancellationToken).ConfigureAwait(false);
        await manager.StopBackgroundAsync().ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
