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
        var urls = new Option<string>("--urls") { Description = "Where to listen: an IP address or localhost, e.g. http://127.0.0.1:5000 (port 0 picks a free one; http://0.0.0.0:5000 listens on every interface).", DefaultValueFactory = _ => "http://127.0.0.1:5000" };
        var drainTimeout = NumberOptions.Seconds("--drain-timeout", "Seconds to wait for clients to answer the 1012 Close frames.", 20);
        var hintMin = NumberOptions.Seconds("--hint-min", "Lower end of the restart hint window, seconds.", 1, allowZero: true);
        var hintMax = NumberOptions.Seconds("--hint-max", "Upper end of the restart hint window, seconds.", 5);
        var maxConnections = NumberOptions.OptionalWhole("--max-connections", "Connections beyond this are closed with 1013.", 1, int.MaxValue);
        var maxMessageSize = NumberOptions.OptionalWhole("--max-message-size", "The largest message accepted from a client, in bytes; a bigger one is closed with 1009. Default 1048576 (1 MiB).", 1, int.MaxValue);
        var sessionFile = new Option<string?>("--session-file") { Description = "Where sessions are saved on Ctrl-C/SIGTERM and loaded from on start, so session clients (lifeline.v1) resume across a restart. Default: lifeline-serve-PORT.sessions in the temp directory; with port 0, sessions are not saved unless this is given." };
        var redis = new Option<string?>("--redis") { Description = "Share sessions and group sends with other nodes through Redis at HOST:PORT (run several nodes behind a load balancer)." };
        var command = new Command("serve", "Run an echo (/ws), broadcast (/broadcast) and numbered stream (/stream) server; Ctrl-C drains it with 1012.")
        {
            urls, drainTimeout, hintMin, hintMax, maxConnections, maxMessageSize, sessionFile, redis,
        };
        command.SetAction((result, cancellationToken) => RunAsync(console, result.GetValue(urls)!, result.GetValue(sessionFile), options =>
        {
            options.DrainTimeout = CommonOptions.Seconds(result.GetValue(drainTimeout), "--drain-timeout", "serve");
            options.RestartHintMin = CommonOptions.Seconds(result.GetValue(hintMin), "--hint-min", "serve", allowZero: true);
            options.RestartHintMax = CommonOptions.Seconds(result.GetValue(hintMax), "--hint-max", "serve");
            if (options.RestartHintMin > options.RestartHintMax)
            {
                var maxGiven = result.GetResult(hintMax) is { Implicit: false };
                throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                    $"--hint-min ({result.GetValue(hintMin)} s) must not be above --hint-max ({result.GetValue(hintMax)} s{(maxGiven ? string.Empty : ", the default")}); the restart hints are spread between the two."), "serve");
            }

            options.MaxConnections = (int?)result.GetValue(maxConnections);
            if (result.GetValue(maxMessageSize) is { } size)
            {
                options.MaxMessageSize = (int)size;
            }
        }, result.GetValue(redis), cancellationToken));
        return command;
    }

    /// <summary>One http:// address with a host and a port in range; what Kestrel would only reject at start is refused here.</summary>
    internal static void CheckUrls(string urls)
    {
        CommonOptions.CheckPortInUrl(urls, $"--urls '{urls}'", "serve", allowZero: true);
        if (!Uri.TryCreate(urls, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            throw new UsageException($"--urls '{urls}' is not an http:// address such as http://127.0.0.1:5000.", "serve");
        }

        if (uri.UserInfo.Length > 0 || AuthorityOf(urls).Contains('@', StringComparison.Ordinal))
        {
            // Kestrel reads "x@127.0.0.1" as the host, which is no IP address, and listened on every interface.
            throw new UsageException($"--urls '{urls}': an address to listen on has no user name; give it as http://{uri.Authority}.", "serve");
        }

        if (uri.Scheme == "https")
        {
            throw new UsageException($"--urls '{urls}': https needs a server certificate, which lifeline serve does not set up; use http:// (clients then connect with ws://).", "serve");
        }

        if (uri.Port == 0 && uri.IsLoopback && uri.HostNameType == UriHostNameType.Dns)
        {
            throw new UsageException($"--urls '{urls}': port 0 (pick a free port) needs an IP address, such as http://127.0.0.1:0, not a host name.", "serve");
        }

        if (uri.HostNameType == UriHostNameType.Dns && !uri.IsLoopback)
        {
            // Kestrel listens on every interface for a host name it cannot bind to: a typo would expose the server.
            throw new UsageException($"--urls '{urls}': give an IP address to listen on, such as http://127.0.0.1:5000 (or http://0.0.0.0:5000 for every interface), or localhost; not the host name '{uri.Host}'.", "serve");
        }

        if (uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            throw new UsageException($"--urls '{urls}': an address to listen on has no path, query or fragment; the endpoints are /ws and /stream.", "serve");
        }
    }

    /// <summary>The text between "://" and the path of an address as typed (an empty user name, "http://@host", has no UserInfo).</summary>
    private static string AuthorityOf(string url)
    {
        var start = url.IndexOf("://", StringComparison.Ordinal) is var scheme and >= 0 ? scheme + 3 : 0;
        var end = url.IndexOfAny(['/', '?', '#'], start);
        return end < 0 ? url[start..] : url[start..end];
    }

    /// <summary>The drain file: <paramref name="sessionFile"/>, else one named for the port; null (not saved) for port 0 without it.</summary>
    internal static string? SessionFilePath(string urls, string? sessionFile)
    {
        if (sessionFile is not null)
        {
            if (string.IsNullOrWhiteSpace(sessionFile))
            {
                throw new UsageException("--session-file needs a path.", "serve");
            }

            var path = Path.GetFullPath(sessionFile);
            if (Directory.Exists(path))
            {
                throw new UsageException($"--session-file '{sessionFile}' is a directory; give the path of a file, such as {Path.Combine(sessionFile, "lifeline.sessions")}.", "serve");
            }

            // Tried now: the save happens at the drain, where a failure is only logged, and this tool logs nothing. Found
            // then, the sessions would be lost after a restart that had promised to keep them.
            if (!CanWriteBeside(path, out var why))
            {
                throw new UsageException($"--session-file '{sessionFile}' cannot be written ({why}); give a path in a folder this user can write.", "serve");
            }

            return path;
        }

        var port = new Uri(urls).Port;
        return port == 0 ? null : Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"lifeline-serve-{port}.sessions"));
    }

    /// <summary>
    /// Whether a file can be created next to <paramref name="path"/> (the drain writes a temporary file, then moves it).
    /// The save creates missing folders, so the nearest folder that exists is tried; nothing is created but the probe.
    /// </summary>
    private static bool CanWriteBeside(string path, out string why)
    {
        var directory = Path.GetDirectoryName(path) ?? ".";
        while (!Directory.Exists(directory) && Path.GetDirectoryName(directory) is { } parent)
        {
            directory = parent;
        }

        var probe = Path.Combine(directory, $".lifeline-write-check-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            why = string.Empty;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            why = e.Message;
            return false;
        }
    }

    /// <summary>HOST:PORT with a port in range (an IPv6 host in brackets).</summary>
    internal static void CheckRedis(string redis)
    {
        var colon = redis.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(redis.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new UsageException($"--redis '{redis}' is not HOST:PORT, such as 127.0.0.1:6379.", "serve");
        }
    }

    private static async Task<int> RunAsync(CliConsole console, string urls, string? sessionFile, Action<LifelineServerOptions> configure, string? redis, CancellationToken cancellationToken)
    {
        CheckUrls(urls);
        var sessionPath = redis is null ? SessionFilePath(urls, sessionFile) : null;
        if (redis is not null)
        {
            CheckRedis(redis);
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

        await using var app = DemoServer.Build(urls, configure, sessions =>
        {
            sessions.DrainFilePath = sessionPath;
            sessions.PersistOnDrain = sessionPath is not null;
        }, redis);
        try
        {
            await app.StartAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            await console.Error.WriteLineAsync($"error: --urls: cannot listen on {urls}: {e.GetBaseException().Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        var address = app.Urls.First();
        var ws = "ws" + address[4..];
        await console.Output.WriteLineAsync($"listening on {address}").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  echo       {ws}{DemoServer.EchoPath}").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  broadcast  {ws}{DemoServer.BroadcastPath}").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  stream     {ws}{DemoServer.StreamPath}?interval=1000").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  health     {address}{DemoServer.HealthPath}").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  page       {address}/ (lifeline.js from {DemoServer.ScriptPath})").ConfigureAwait(false);
        await console.Output.WriteLineAsync($"  dashboard  {address}{DemoServer.DashboardPath}").ConfigureAwait(false);
        if (redis is null)
        {
            await console.Output.WriteLineAsync(sessionPath is null
                ? "  sessions   on /ws and /stream; not saved on restart (port 0: give --session-file to keep them)"
                : $"  sessions   on /ws and /stream; saved on restart to {sessionPath}").ConfigureAwait(false);
        }
        if (redis is not null)
        {
            await console.Output.WriteLineAsync($"  sessions   on /ws and /stream, shared through Redis at {redis} (node {app.Services.GetRequiredService<Lifeline.Redis.LifelineRedisConnection>().NodeId})").ConfigureAwait(false);
        }
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
        await console.Output.FlushAsync(CancellationToken.None).ConfigureAwait(false); // seen while the drain runs, also through a pipe
        var started = TimeProvider.System.GetTimestamp();
        await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await console.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"stopped after {TimeProvider.System.GetElapsedTime(started).TotalSeconds:0.00} s")).ConfigureAwait(false);
        return ExitCodes.Success;
    }
}
