using System.CommandLine;
using System.Globalization;
using System.Net;
using Lifeline.Cli.Diagnostics;
using Lifeline.Cli.Rendering;
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
        var latency = new Option<int?>("--latency") { Description = "Delay every chunk by this many milliseconds." };
        var jitter = new Option<int?>("--jitter") { Description = "Random deviation of the latency, milliseconds." };
        var bandwidth = new Option<long?>("--bandwidth") { Description = "Throughput limit, bytes per second." };
        var slice = new Option<int?>("--slice") { Description = "Split writes into pieces of this many bytes." };
        var blackhole = new Option<bool>("--blackhole") { Description = "Start with every byte swallowed." };
        var idleCut = new Option<double?>("--idle-cut") { Description = "Cut links idle for this many seconds." };
        var idleCutKind = new Option<string>("--idle-cut-kind") { Description = "How idle links are cut: reset, fin or silent.", DefaultValueFactory = _ => "reset" };
        var control = new Option<string?>("--control") { Description = "Also take commands over HTTP at HOST:PORT (POST /command with the command as the body; GET /status)." };
        var json = new Option<bool>("--json") { Description = "Print link events as JSON lines." };
        var command = new Command("proxy", "Run the fault proxy between a client and a server; switch faults at run time by typing commands ('help' lists them).")
        {
            listen, upstream, latency, jitter, bandwidth, slice, blackhole, idleCut, idleCutKind, control, json,
        };
        command.SetAction((result, cancellationToken) =>
        {
            var listenAt = ParseEndPoint(result.GetValue(listen)!, "--listen");
            var (host, port) = ParseHostPort(result.GetValue(upstream)!, "--upstream");
            var startup = new List<string>();
            if (result.GetValue(blackhole))
            {
                startup.Add("blackhole on");
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

        var events = new EventWriter(console, json, TimeProvider.System);
        proxy.LinkOpened += link => events.Write(events.Line("link-opened") with
        {
            Data = string.Create(CultureInfo.InvariantCulture, $"link {link.Id} from {link.ClientEndPoint}"),
        });
        proxy.LinkEnded += link => events.Write(events.Line("link-ended") with
        {
            Data = string.Create(CultureInfo.InvariantCulture, $"link {link.Id}: {link.BytesUpstream} bytes up, {link.BytesDownstream} down"),
        });
        try
        {
            proxy.Start();
        }
        catch (System.Net.Sockets.SocketException e)
        {
            await console.Error.WriteLineAsync($"error: cannot listen on {listen}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        await using var controlServer = controlAt is null ? null : await StartControlAsync(controlAt, control).ConfigureAwait(false);
        await console.Output.WriteLineAsync($"proxy listening on {proxy.EndPoint} -> {host}:{port}").ConfigureAwait(false);
        if (controlServer is not null)
        {
            await console.Output.WriteLineAsync($"control on {controlServer.Urls.First()}").ConfigureAwait(false);
        }

        await console.Output.WriteLineAsync("type 'help' for commands; Ctrl-C stops").ConfigureAwait(false);
        await console.Output.FlushAsync(CancellationToken.None).ConfigureAwait(false);

        try
        {
            while (await console.Input.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (!string.IsNullOrWhiteSpace(line))
                {
                    events.Write(events.Line("control") with { Data = control.Execute(line) });
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

    internal static IPEndPoint ParseEndPoint(string text, string option)
    {
        var (host, port) = ParseHostPort(text, option, allowZero: true);
        var address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var parsed) ? parsed
            : throw new UsageException($"{option} '{text}' needs an IP address such as 127.0.0.1:8080.", "proxy");
        return new IPEndPoint(address, port);
    }

    internal static (string Host, int Port) ParseHostPort(string text, string option, bool allowZero = false)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535 || (port == 0 && !allowZero))
        {
            throw new UsageException($"{option} '{text}' is not HOST:PORT with a port of {(allowZero ? 0 : 1)}-65535.", "proxy");
        }

        return (text[..colon].Trim('[', ']'), port);
    }
}
