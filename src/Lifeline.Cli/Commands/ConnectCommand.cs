using System.CommandLine;
using System.Globalization;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.Cli.Rendering;
using Lifeline.Reconnect;

namespace Lifeline.Cli.Commands;

/// <summary><c>lifeline connect URL</c>: a Lifeline client that prints every event and sends the lines typed on stdin.</summary>
internal static class ConnectCommand
{
    public static Command Create(CliConsole console)
    {
        var url = new Argument<string>("url") { Description = "The ws:// or wss:// address to connect to." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per line instead of text." };
        var keepAlive = new Option<double>("--keepalive") { Description = "Seconds between protocol pings; 0 turns keep-alive off.", DefaultValueFactory = _ => 15 };
        var keepAliveTimeout = new Option<double>("--keepalive-timeout") { Description = "Seconds to wait for a pong before the link counts as dead.", DefaultValueFactory = _ => 15 };
        var stopOn = new Option<string[]>("--stop-on") { Description = "Close codes after which not to reconnect (repeatable), on top of the defaults.", AllowMultipleArgumentsPerToken = true };
        var command = new Command("connect", "Connect with the close-code-aware reconnect policy and print every event; lines on stdin are sent as text messages.")
        {
            url, json, keepAlive, keepAliveTimeout, stopOn,
        };
        command.SetAction((result, cancellationToken) => RunAsync(console, new Settings(
            result.GetValue(url)!, result.GetValue(json), result.GetValue(keepAlive), result.GetValue(keepAliveTimeout), result.GetValue(stopOn) ?? []),
            cancellationToken));
        return command;
    }

    internal sealed record Settings(string Url, bool Json, double KeepAliveSeconds, double KeepAliveTimeoutSeconds, string[] StopOn);

    private static LifelineClientOptions BuildOptions(Settings settings)
    {
        if (!Uri.TryCreate(settings.Url, UriKind.Absolute, out var uri))
        {
            throw new UsageException($"'{settings.Url}' is not an absolute URL; use ws://host:port/path or wss://host:port/path.", "connect");
        }

        if (settings.KeepAliveSeconds < 0 || !double.IsFinite(settings.KeepAliveSeconds))
        {
            throw new UsageException($"--keepalive must be 0 (off) or a positive number of seconds, not {settings.KeepAliveSeconds.ToString(CultureInfo.InvariantCulture)}.", "connect");
        }

        if (settings.KeepAliveTimeoutSeconds <= 0 || !double.IsFinite(settings.KeepAliveTimeoutSeconds))
        {
            throw new UsageException($"--keepalive-timeout must be a positive number of seconds, not {settings.KeepAliveTimeoutSeconds.ToString(CultureInfo.InvariantCulture)}.", "connect");
        }

        var policy = new ReconnectPolicyOptions();
        foreach (var text in settings.StopOn)
        {
            policy.CodeReactions[CommonOptions.ParseCode(text, "connect").Value] = CloseReaction.Stop;
        }

        try
        {
            return new LifelineClientOptions
            {
                Uri = uri,
                ReconnectPolicy = new DefaultReconnectPolicy(policy),
                KeepAliveInterval = TimeSpan.FromSeconds(settings.KeepAliveSeconds),
                KeepAliveTimeout = TimeSpan.FromSeconds(settings.KeepAliveTimeoutSeconds),
            };
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message, "connect");
        }
    }

    private static async Task<int> RunAsync(CliConsole console, Settings settings, CancellationToken cancellationToken)
    {
        var options = BuildOptions(settings);
        var time = TimeProvider.System;
        var writer = new EventWriter(console, settings.Json, time);
        options.BeforeConnect = (context, _) =>
        {
            writer.Write(writer.Line("connecting") with { Attempt = context.Attempt, Data = context.Uri.ToString() });
            return ValueTask.CompletedTask;
        };

        await using var client = new LifelineClient(options);
        client.StateChanged += (_, change) =>
        {
            switch (change.Current)
            {
                case LifelineClientState.Connected:
                    writer.Write(writer.Line("connected") with { Attempt = change.Attempt });
                    break;
                case LifelineClientState.Reconnecting:
                    WriteClosed(writer, change.Close);
                    writer.Write(writer.Line("reconnecting") with
                    {
                        Code = change.Close?.Code.Value,
                        Reason = change.Close?.Reason,
                        DelayMs = (long?)change.ReconnectDelay?.TotalMilliseconds,
                        Attempt = change.Attempt,
                        Cause = change.Failure?.Cause ?? change.Close?.Cause,
                    });
                    break;
                case LifelineClientState.Closed:
                    if (change.Previous == LifelineClientState.Connected)
                    {
                        WriteClosed(writer, change.Close);
                    }

                    writer.Write(writer.Line("stopped") with
                    {
                        Code = change.Close?.Code.Value,
                        Reason = change.Close?.Reason,
                        Cause = change.Failure?.Cause ?? change.Close?.Cause,
                    });
                    break;
            }
        };

        _ = client.StartAsync(CancellationToken.None).ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        var reading = PrintMessagesAsync(client, writer);
        _ = SendTypedLinesAsync(console.Input, client, cancellationToken); // not awaited: a read may block until the user types
        try
        {
            await client.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await client.StopAsync(CloseCode.NormalClosure, "client stopped", CancellationToken.None).ConfigureAwait(false);
        }

        await reading.ConfigureAwait(false);

        // Ctrl-C and a normal close are successes; anything else means the policy gave up.
        var stoppedByPolicy = !cancellationToken.IsCancellationRequested && client.LastClose?.Code != CloseCode.NormalClosure;
        return stoppedByPolicy ? ExitCodes.Failure : ExitCodes.Success;
    }

    private static void WriteClosed(EventWriter writer, CloseRecord? close)
    {
        if (close is null)
        {
            return;
        }

        writer.Write(writer.Line("closed") with
        {
            Code = close.Code.Value,
            Reason = close.Reason,
            CloseFrameReceived = close.CloseFrameReceived,
            Cause = close.Cause,
        });
    }

    private static async Task PrintMessagesAsync(LifelineClient client, EventWriter writer)
    {
        await foreach (var message in client.ReadAllAsync().ConfigureAwait(false))
        {
            var data = message.Type == WebSocketMessageType.Text ? message.Text : Convert.ToBase64String(message.Data.Span);
            writer.Write(writer.Line("message") with { Data = data });
        }
    }

    private static async Task SendTypedLinesAsync(TextReader input, LifelineClient client, CancellationToken cancellationToken)
    {
        try
        {
            while (await input.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                await client.SendTextAsync(line, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or ObjectDisposedException)
        {
            // The client closed or the user pressed Ctrl-C: stop reading.
        }
    }
}
