using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text;
using Lifeline.Cli.Diagnostics;
using Lifeline.Cli.Input;
using Lifeline.Cli.Rendering;
using Lifeline.Cli.Serve;
using Lifeline.FaultProxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Lifeline.Cli.Commands;

/// <summary><c>lifeline proxy</c>: the fault proxy for testing one's own application, switched from stdin or HTTP.</summary>
internal static class ProxyCommand
{
    public static Command Create(CliConsole console)
    {
        var listen = new Option<string>("--listen") { Description = "Where to listen, HOST:PORT (port 0 picks one).", DefaultValueFactory = _ => "127.0.0.1:0" };
        var upstream = new Option<string>("--upstream") { Description = "Where to forward, HOST:PORT.", Required = true };
        var latency = NumberOptions.OptionalWhole("--latency", "Delay every chunk by this many milliseconds.", 1, ProxyControl.MaxMilliseconds);
        var jitter = NumberOptions.OptionalWhole("--jitter", "Random deviation of the latency, milliseconds.", 0, ProxyControl.MaxMilliseconds);
        var bandwidth = NumberOptions.OptionalWhole("--bandwidth", "Throughput limit, bytes per second.", 1, ProxyControl.MaxNumber);
        var slice = NumberOptions.OptionalWhole("--slice", "Split writes into pieces of this many bytes.", 1, ProxyControl.MaxNumber);
        var blackhole = new Option<bool>("--blackhole") { Description = "Start with a black hole: nothing crosses (bytes, FIN, reset) and the senders stall; what it held is delivered in order once it is lifted ('blackhole off'), unless the link is cut first." };
        var idleCut = NumberOptions.OptionalSeconds("--idle-cut", "Cut links idle for this many seconds.");
        var idleCutKind = new Option<string>("--idle-cut-kind") { Description = "How idle links are cut: reset (RST at the deadline), fin, silent, or reset-on-next (forgotten silently, RST for the next packet).", DefaultValueFactory = _ => "reset" };
        var control = new Option<string?>("--control") { Description = "Also take commands over HTTP at HOST:PORT (POST /command with the command as the body; GET /status)." };
        var json = CommonOptions.Json("Print every line as JSON: link events, command answers and the start-up lines ('started').");
        var command = new Command("proxy", "Run the fault proxy between a client and a server; switch faults at run time by typing commands ('help' lists them).")
        {
            listen, upstream, latency, jitter, bandwidth, slice, blackhole, idleCut, idleCutKind, control, json,
        };
        command.SetAction((result, cancellationToken) =>
        {
            var listenAt = ParseEndPoint(result.GetValue(listen)!, "--listen");
            if (result.GetValue(upstream)!.Contains("://", StringComparison.Ordinal))
            {
                throw new UsageException(
                    $"--upstream '{result.GetValue(upstream)}' is a URL; give HOST:PORT such as 127.0.0.1:5000 (the proxy forwards TCP bytes, so a scheme and path do not apply).", "proxy");
            }

            var (host, port) = ParseHostPort(result.GetValue(upstream)!, "--upstream");
            var startup = new List<string>();
            if (result.GetValue(blackhole))
            {
                startup.Add("blackhole on");
            }

            if (result.GetValue(jitter) is not null && result.GetValue(latency) is null)
            {
                throw new UsageException("--jitter needs --latency MS (the delay it varies).", "proxy");
            }

            if (result.GetValue(latency) is { } ms)
            {
                startup.Add(string.Create(CultureInfo.InvariantCulture, $"latency {ms} {result.GetValue(jitter) ?? 0}"));
            }

            if (result.GetValue(bandwidth) is { } bps)
            {
                startup.Add(string.Create(CultureInfo.InvariantCulture, $"bandwidth {bps}"));
            }

            if (result.GetValue(slice) is { } bytes)
            {
                startup.Add(string.Create(CultureInfo.InvariantCulture, $"slice {bytes}"));
            }

            if (result.GetResult(idleCutKind) is { Implicit: false } && result.GetValue(idleCut) is null)
            {
                throw new UsageException("--idle-cut-kind needs --idle-cut SECONDS (after how long a silent link is cut).", "proxy");
            }

            if (result.GetValue(idleCut) is { } seconds)
            {
                try
                {
                    ProxyControl.ParseKind(result.GetValue(idleCutKind)!);
                }
                catch (ArgumentException e)
                {
                    throw new UsageException("--idle-cut-kind: " + e.Message, "proxy");
                }

                startup.Add(string.Create(CultureInfo.InvariantCulture, $"idle-cut {seconds} {result.GetValue(idleCutKind)}"));
            }

            var controlAt = result.GetValue(control) is { } c ? ParseEndPoint(c, "--control") : null;
            return RunAsync(console, listenAt, host, port, startup, controlAt, result.GetValue(json), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(CliConsole console, IPEndPoint listen, string host, int port, List<string> startup, IPEndPoint? controlAt,
        bool json, CancellationToken cancellationToken)
    {
        // Made first, so disposed last: the links the proxy ends when it stops still get their link-ended lines. Queued:
        // the links raise their events before they forward, and must not wait on a stdout nobody reads.
        await using var events = EventWriter.Queued(console, json, TimeProvider.System);
        await using var proxy = new TcpFaultProxy(new FaultProxyOptions { ListenEndPoint = listen, UpstreamHost = host, UpstreamPort = port });
        var control = new ProxyControl(proxy);
        foreach (var line in startup)
        {
            var answer = control.Execute(line);
            if (answer.StartsWith("error:", StringComparison.Ordinal))
            {
                throw new UsageException(answer["error: ".Length..], "proxy");
            }
        }

        // Every line of stdout goes through the events' queue, which keeps them whole and in order. With --json every
        // line is JSON: the start-up lines are "started" events.
        void Started(string text)
        {
            if (json)
            {
                events.Write(events.Line("started") with { Data = text });
            }
            else
            {
                events.WriteText(text);
            }
        }

        proxy.LinkOpened += link => events.Write(events.Line("link-opened") with
        {
            Data = string.Create(CultureInfo.InvariantCulture, $"link {link.Id} from {link.ClientEndPoint}"),
        });
        proxy.LinkEnded += link => events.Write(events.Line("link-ended") with
        {
            Data = string.Create(CultureInfo.InvariantCulture, $"link {link.Id}: {link.BytesUpstream} bytes up, {link.BytesDownstream} down"),
        });
        proxy.AcceptFailed += error => events.Write(events.Line("accept-failed") with
        {
            Data = $"cannot accept a connection: {error.Message}; still listening, trying again every 100 ms",
        });
        proxy.UpstreamConnectFailed += (client, error) => events.Write(events.Line("upstream-failed") with
        {
            Data = $"link from {client}: cannot connect to the upstream {HostPort(host, port)}: {Explain(error)}; the client was reset",
        });
        try
        {
            proxy.Start();
        }
        catch (System.Net.Sockets.SocketException e)
        {
            await console.Error.WriteLineAsync($"error: --listen: cannot listen on {listen}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        Started($"proxy listening on {proxy.EndPoint} -> {HostPort(host, port)}"); // at once, ahead of the links' lines

        WebApplication? controlServer = null;
        if (controlAt is not null)
        {
            try
            {
                controlServer = await StartControlAsync(controlAt, control).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
            {
                // Kestrel wraps only "address in use" in an IOException; a port that needs privileges or an address of
                // no interface here comes as a bare SocketException.
                await console.Error.WriteLineAsync($"error: --control: cannot listen on {controlAt}: {e.GetBaseException().Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }
        }

        await using var controlScope = controlServer;
        if (controlServer is not null)
        {
            Started($"control on {controlServer.Urls.First()}");
        }

        Started("type 'help' for commands; Ctrl-C stops");

        try
        {
            // stdin is read on its own thread: a signal ends the proxy at once whatever stdin is doing.
            await foreach (var line in LineReader.Start(console.Input, MaxCommandBytes).ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                var text = line.Data is { } bytes ? Encoding.UTF8.GetString(bytes) : null;
                if (text is null)
                {
                    events.Write(events.Line("control") with { Data = $"error: a command of {line.Length} bytes is too long (at most {MaxCommandBytes})" });
                }
                else if (!string.IsNullOrWhiteSpace(text))
                {
                    events.Write(events.Line("control") with { Data = control.Execute(text) });
                }
            }

            // Input closed (for example < /dev/null): keep proxying until Ctrl-C.
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C.
        }

        if (controlServer is not null)
        {
            await controlServer.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }

        return ExitCodes.Success;
    }

    private static async Task<WebApplication> StartControlAsync(IPEndPoint at, ProxyControl control)
    {
        var builder = WebApplication.CreateSlimBuilder();
        CommandHostLifetime.Use(builder.Services); // the command stops it; a second Ctrl-C must end the process
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(at));
        var app = builder.Build();
        app.MapGet("/status", () => Results.Content(control.Status(), "application/json"));
        app.MapPost("/command", async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            var answer = control.Execute(await reader.ReadToEndAsync().ConfigureAwait(false));
            return answer.StartsWith("error:", StringComparison.Ordinal) ? Results.BadRequest(answer) : Results.Text(answer);
        });
        await app.StartAsync().ConfigureAwait(false);
        return app;
    }

    private const int MaxCommandBytes = 64 * 1024;

    private static string Explain(Exception error) => error switch
    {
        System.Net.Sockets.SocketException socket => $"{socket.SocketErrorCode} ({socket.Message})",
        OperationCanceledException => "connect timeout",
        _ => error.Message,
    };

    internal static IPEndPoint ParseEndPoint(string text, string option)
    {
        var (host, port) = ParseHostPort(text, option, allowZero: true);
        var address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var parsed) ? parsed
            : throw new UsageException($"{option} '{text}' needs an IP address such as 127.0.0.1:8080.", "proxy");
        return new IPEndPoint(address, port);
    }

    /// <summary>HOST:PORT as the user would type it again: an IPv6 address in brackets.</summary>
    private static string HostPort(string host, int port) =>
        host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port.ToString(CultureInfo.InvariantCulture)}" : $"{host}:{port.ToString(CultureInfo.InvariantCulture)}";

    internal static (string Host, int Port) ParseHostPort(string text, string option, bool allowZero = false)
    {
        var example = $"127.0.0.1:{(allowZero ? 0 : 5000)} or [::1]:{(allowZero ? 0 : 5000)}";
        string host;
        string portText;
        if (text.StartsWith('['))
        {
            // An IPv6 address goes in brackets (RFC 3986): its own colons would otherwise be taken for the port's.
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                throw new UsageException($"{option} '{text}' is not HOST:PORT: an IPv6 address goes in brackets, followed by the port, such as [::1]:{(allowZero ? 0 : 5000)}.", "proxy");
            }

            host = text[1..close];
            portText = text[(close + 2)..];
            if (!IPAddress.TryParse(host, out var inBrackets) || inBrackets.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                throw new UsageException($"{option} '{text}': '{host}' in brackets is not an IPv6 address; give one such as [::1]:{(allowZero ? 0 : 5000)}, or a host name or IPv4 address without brackets.", "proxy");
            }

            // An unknown zone parses as no zone (scope 0): every link would then fail at connect with "invalid argument".
            var zone = host.IndexOf('%', StringComparison.Ordinal);
            if (zone >= 0 && inBrackets.ScopeId == 0)
            {
                throw new UsageException($"{option} '{text}': the zone '{host[(zone + 1)..]}' names no network interface of this machine; give an interface name or index after the %, such as [{host[..zone]}%lo]:{(allowZero ? 0 : 5000)}.", "proxy");
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon <= 0)
            {
                throw new UsageException($"{option} '{text}' is not HOST:PORT, such as {example}.", "proxy");
            }

            host = text[..colon];
            portText = text[(colon + 1)..];
            if (host.Contains(':', StringComparison.Ordinal))
            {
                throw new UsageException($"{option} '{text}' is not HOST:PORT: put an IPv6 address in brackets, such as [{host}]:{portText}.", "proxy");
            }

            if (Uri.CheckHostName(host) == UriHostNameType.Unknown)
            {
                throw new UsageException($"{option} '{text}': '{host}' is not a host name or IP address; give HOST:PORT such as {example}.", "proxy");
            }
        }

        if (portText.Length == 0)
        {
            throw new UsageException($"{option} '{text}' has no port after the colon; give HOST:PORT such as {example}.", "proxy");
        }

        if (!CommonOptions.IsPort(portText, allowZero))
        {
            throw new UsageException(CommonOptions.PortMessage($"{option} '{text}'", portText, allowZero), "proxy");
        }

        return (host, int.Parse(portText, NumberStyles.None, CultureInfo.InvariantCulture));
    }
}
