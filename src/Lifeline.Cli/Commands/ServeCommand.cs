using System.CommandLine;
using System.Globalization;
using Lifeline.AspNetCore;
using Lifeline.Cli.Serve;
using Microsoft.Extensions.DependencyInjection;

namespace Lifeline.Cli.Commands;

/// <summary><c>lifeline serve</c>: an echo, broadcast and stream server that restarts gracefully on Ctrl-C or SIGTERM.</summary>
internal static class ServeCommand
{
    public static Command Create(CliConsole console)
    {
        var urls = new Option<string>("--urls") { Description = "Where to listen, e.g. http://127.0.0.1:5000 (port 0 picks a free one).", DefaultValueFactory = _ => "http://127.0.0.1:5000" };
        var drainTimeout = new Option<double>("--drain-timeout") { Description = "Seconds to wait for clients to answer the 1012 Close frames.", DefaultValueFactory = _ => 20 };
        var hintMin = new Option<double>("--hint-min") { Description = "Lower end of the restart hint window, seconds.", DefaultValueFactory = _ => 1 };
        var hintMax = new Option<double>("--hint-max") { Description = "Upper end of the restart hint window, seconds.", DefaultValueFactory = _ => 5 };
        var maxConnections = new Option<int?>("--max-connections") { Description = "Connections beyond this are closed with 1013." };
        var maxMessageSize = new Option<int?>("--max-message-size") { Description = "The largest message accepted from a client, in bytes; a bigger one is closed with 1009. Default 1048576 (1 MiB)." };
        var command = new Command("serve", "Run an echo (/ws), broadcast (/broadcast) and numbered stream (/stream) server; Ctrl-C drains it with 1012.")
        {
            urls, drainTimeout, hintMin, hintMax, maxConnections, maxMessageSize,
        };
        command.SetAction((result, cancellationToken) => RunAsync(console, result.GetValue(urls)!, options =>
        {
            options.DrainTimeout = Seconds(result.GetValue(drainTimeout), "--drain-timeout");
            options.RestartHintMin = Seconds(result.GetValue(hintMin), "--hint-min", allowZero: true);
            options.RestartHintMax = Seconds(result.GetValue(hintMax), "--hint-max");
            options.MaxConnections = result.GetValue(maxConnections) is { } max
                ? max >= 1 ? max : throw new UsageException($"--max-connections must be at least 1, not {max}.", "serve")
                : null;
            if (result.GetValue(maxMessageSize) is { } size)
            {
                options.MaxMessageSize = size >= 1 ? size : throw new UsageException($"--max-message-size must be at least 1 byte, not {size}.", "serve");
            }
        }, cancellationToken));
        return command;
    }

    private static TimeSpan Seconds(double value, string option, bool allowZero = false)
    {
        if (!double.IsFinite(value) || value < 0 || (!allowZero && value == 0))
        {
            throw new UsageException($"{option} must be a {(allowZero ? "non-negative" : "positive")} number of seconds, not {value.ToString(CultureInfo.InvariantCulture)}.", "serve");
        }

        return TimeSpan.FromSeconds(value);
    }

    private static async Task<int> RunAsync(CliConsole console, string urls, Action<LifelineServerOptions> configure, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(urls, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UsageException($"--urls '{urls}' is not an http:// address such as http://127.0.0.1:5000.", "serve");
        }

        // Check the options here so that a bad value is a usage error, not a start-up crash.
        var checkedOptions = new LifelineServerOptions();
        configure(checkedOptions);
        try
        {
            checkedOptions.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message, "serve");
        }

        await using var app = DemoServer.Build(urls, configure);
        try
        {
            await app.StartAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await console.Error.WriteLineAsync($"error: cannot listen on {urls}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        var address = app.Urls.First();
        var ws = "ws" + address[4..];
        await console.Output.WriteLineAsync($"listening on {address}").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  echo       {ws}{DemoServer.EchoPath}").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  broadcast  {ws}{DemoServer.BroadcastPath}").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  stream     {ws}{DemoServer.StreamPath}?interval=1000").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  health     {address}{DemoServer.HealthPath}").ConfigureAwait(false);
        await console.Output.WriteLineAsync("press Ctrl-C to restart gracefully (1012 with retry hints, then drain)").ConfigureAwait(false);
        await console.Output.FlushAsync(CancellationToken.None).ConfigureAwait(false);

        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C or SIGTERM: fall through to the graceful stop.
        }

        var server = app.Services.GetRequiredService<LifelineServer>();
        await console.Output.WriteLineAsync($"draining {server.Registry.Count} connections with 1012").ConfigureAwait(false);
        var started = TimeProvider.System.GetTimestamp();
        await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await console.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"stopped after {TimeProvider.System.GetElapsedTime(started).TotalSeconds:0.00} s")).ConfigureAwait(false);
        return ExitCodes.Success;
    }
}
