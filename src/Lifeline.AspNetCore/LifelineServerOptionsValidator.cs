using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Lifeline.AspNetCore;

/// <summary>
/// Checks the server options when the host starts, including against the host's own shutdown timeout: a drain
/// that outlasts it would be cut off mid-way, and the clients still connected would see 1006 instead of 1012.
/// </summary>
internal sealed class LifelineServerOptionsValidator(IOptions<HostOptions> hostOptions) : IValidateOptions<LifelineServerOptions>
{
    public ValidateOptionsResult Validate(string? name, LifelineServerOptions options)
    {
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            return ValidateOptionsResult.Fail(e.Message);
        }

        var shutdown = hostOptions.Value.ShutdownTimeout;
        return shutdown != Timeout.InfiniteTimeSpan && options.DrainTimeout >= shutdown // infinite: the host waits for the drain
            ? ValidateOptionsResult.Fail(
                $"DrainTimeout ({options.DrainTimeout}) must be shorter than HostOptions.ShutdownTimeout ({shutdown}), or the host stops before the drain ends. " +
                "Lower DrainTimeout or raise ShutdownTimeout (and the orchestrator's grace period with it).")
            : ValidateOptionsResult.Success;
    }
}
