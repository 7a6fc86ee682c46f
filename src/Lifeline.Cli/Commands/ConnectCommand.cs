using System.CommandLine;
using System.Globalization;
using System.Net.WebSockets;
using Lifeline.Cli.Input;
using Lifeline.Cli.Rendering;
using Lifeline.Client;
using Lifeline.CloseCodes;
using Lifeline.Reconnect;
using Lifeline.Session.Wire;

namespace Lifeline.Cli.Commands;

/// <summary>
/// <c>lifeline connect URL</c>: a Lifeline client that prints every event and sends the lines read on stdin.
/// It ends on its own when stdin ends (after sending what was read and closing with 1000), when the policy stops,
/// at <c>--max-time</c>, or at once on Ctrl-C or SIGTERM.
/// </summary>
internal static class ConnectCommand
{
    public const int DefaultMaxMessage = 1024 * 1024;

    private static readonly string[] ReservedHeaders =
        ["host", "connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol", "sec-websocket-extensions"];

    public static Command Create(CliConsole console)
    {
        var url = new Argument<string>("url") { Description = "The ws:// or wss:// address to connect to." };
        var json = CommonOptions.Json("Print one JSON object per line instead of text.");
        var keepAlive = NumberOptions.Seconds("--keepalive", "Seconds between protocol pings; 0 turns keep-alive off.", 15, allowZero: true);
        var keepAliveTimeout = NumberOptions.Seconds("--keepalive-timeout", "Seconds to wait for a pong before the link counts as dead.", 15);
        var stopOn = new Option<string[]>("--stop-on") { Description = "A close code after which not to reconnect (repeatable), on top of the defaults." };
        var noStdin = new Option<bool>("--no-stdin", "-n") { Description = "Do not read stdin; only listen until the connection ends, --max-time or Ctrl-C. Without it, the end of stdin closes the connection (1000) once every line is sent." };
        var maxTime = NumberOptions.OptionalSeconds("--max-time", "End after this many seconds in all (closing with 1000); exit code 5.", aliases: "-m");
        var retries = NumberOptions.OptionalWhole("--retries", "Give up after this many reconnect attempts in a row (default: as the policy says).", 0, 1_000_000, "-r");
        var binary = new Option<bool>("--binary", "-b") { Description = "Send each line of stdin as a binary message (its bytes, without the line ending) instead of text." };
        var maxMessage = NumberOptions.Whole("--max-message", "The largest message sent or received, bytes; longer stdin lines are refused with a message on stderr.", DefaultMaxMessage, 1, 256L * 1024 * 1024);
        var headers = new Option<string[]>("--header", "-H") { Description = "An HTTP header for the upgrade request, 'Name: value' (repeatable)." };
        var subprotocols = new Option<string[]>("--subprotocol", "-s") { Description = "A subprotocol to offer (repeatable)." };
        var origin = new Option<string?>("--origin") { Description = "The Origin header to send." };
        var insecure = new Option<bool>("--insecure", "-k") { Description = "INSECURE: accept any TLS certificate for wss:// (test servers only)." };
        var session = new Option<bool>("--session") { Description = "Use a lossless session (lifeline.v1): messages are numbered, acknowledged and replayed after a reconnect; prints 'resumed' and 'session-lost' events. At the end of stdin it waits until the server acknowledged every line." };
        var command = new Command("connect", "Connect with the close-code-aware reconnect policy and print every event; lines on stdin are sent as messages until stdin ends.")
        {
            url, json, keepAlive, keepAliveTimeout, stopOn, noStdin, maxTime, retries, binary, maxMessage, headers, subprotocols, origin, insecure, session,
        };
        command.SetAction((result, cancellationToken) => RunAsync(console, new Settings(
            result.GetValue(url)!, result.GetValue(json), result.GetValue(keepAlive), result.GetValue(keepAliveTimeout), result.GetValue(stopOn) ?? [])
        {
            ReadStdin = !result.GetValue(noStdin),
            MaxTimeSeconds = result.GetValue(maxTime),
            Retries = (int?)result.GetValue(retries),
            Binary = result.GetValue(binary),
            MaxMessage = (int)result.GetValue(maxMessage),
            Headers = result.GetValue(headers) ?? [],
            SubProtocols = CommonOptions.SubProtocols(result.GetValue(subprotocols) ?? [], "connect", result.GetValue(session)),
            Origin = CommonOptions.HeaderValue(result.GetValue(origin), "--origin", "connect"),
            Insecure = result.GetValue(insecure),
            Session = result.GetValue(session),
        }, cancellationToken));
        return command;
    }

    internal sealed record Settings(string Url, bool Json, double KeepAliveSeconds, double KeepAliveTimeoutSeconds, string[] StopOn)
    {
        public bool ReadStdin { get; init; } = true;

        public double? MaxTimeSeconds { get; init; }

        public int? Retries { get; init; }

        public bool Binary { get; init; }

        public int MaxMessage { get; init; } = DefaultMaxMessage;

        public IReadOnlyList<string> Headers { get; init; } = [];

        public IReadOnlyList<string> SubProtocols { get; init; } = [];

        public string? Origin { get; init; }

        public bool Insecure { get; init; }

        public bool Session { get; init; }
    }

    internal static (LifelineClientOptions Options, CliReconnectPolicy Policy) BuildOptions(Settings settings)
    {
        var uri = CommonOptions.ParseWebSocketUrl(settings.Url, "connect");
        var policyOptions = new ReconnectPolicyOptions();
        foreach (var text in settings.StopOn)
        {
            policyOptions.CodeReactions[CommonOptions.ParseCode(text, "connect").Value] = CloseReaction.Stop;
        }

        var headers = new List<(string Name, string Value)>();
        foreach (var header in settings.Headers)
        {
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            var name = colon > 0 ? header[..colon].Trim() : string.Empty;
            if (name.Length == 0 || name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            {
                throw new UsageException($"--header '{header}' is not 'Name: value'.", "connect");
            }

            if (!Lifeline.Diagnostics.OptionGuard.IsToken(name))
            {
                // Before, the runtime refused it at each connect attempt, and the client retried for ever.
                throw new UsageException($"--header '{name}' is not a header name: letters, digits and !#$%&'*+-.^_`|~ only.", "connect");
            }

            if (ReservedHeaders.Contains(name.ToLowerInvariant()))
            {
                throw new UsageException($"--header '{name}' is set by the WebSocket handshake itself and cannot be replaced{(name.Equals("sec-websocket-protocol", StringComparison.OrdinalIgnoreCase) ? "; use --subprotocol" : string.Empty)}.", "connect");
            }

            headers.Add((name, CommonOptions.HeaderValue(header[(colon + 1)..].Trim(), $"--header '{name}'", "connect")!));
        }

        if (settings.Origin is { } originValue)
        {
            headers.Add(("Origin", originValue));
        }

        var policy = new CliReconnectPolicy(new DefaultReconnectPolicy(policyOptions), settings.Retries);
        try
        {
            var options = new LifelineClientOptions
            {
                Uri = uri,
                ReconnectPolicy = policy,
                KeepAliveInterval = TimeSpan.FromSeconds(settings.KeepAliveSeconds),
                KeepAliveTimeout = TimeSpan.FromSeconds(settings.KeepAliveTimeoutSeconds),
                MaxMessageSize = settings.MaxMessage,
            };
            options.SendQueue.MaxBytes = Math.Max(options.SendQueue.MaxBytes, settings.MaxMessage);
            // Every line read is sent, however long the server stays away: the user asked for each of them, and the
            // command ends "once every line is sent". With the library's default (30 s in plain mode) a line typed or
            // piped during a longer outage was dropped without a word, and the command still exited 0.
            options.SendQueue.MaxAge = null;
            if (settings.Session)
            {
                options.Session = new SessionOptions();
                options.Session.Replay.MaxBytes = Math.Max(options.Session.Replay.MaxBytes, settings.MaxMessage);
            }

            foreach (var protocol in settings.SubProtocols)
            {
                options.SubProtocols.Add(protocol);
            }

            options.ConfigureWebSocket = socket =>
            {
                foreach (var (name, value) in headers)
                {
                    socket.SetRequestHeader(name, value);
                }

                if (settings.Insecure)
                {
#pragma warning disable CA5359 // Only with --insecure, which the user asks for (and is warned about) to reach a test server.
                    socket.RemoteCertificateValidationCallback = (_, _, _, _) => true;
#pragma warning restore CA5359
                }
            };
            return (options, policy);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message, "connect");
        }
    }

    private static async Task<int> RunAsync(CliConsole console, Settings settings, CancellationToken cancellationToken)
    {
        var (options, policy) = BuildOptions(settings);
        if (settings.Insecure)
        {
            await console.Error.WriteLineAsync("warning: --insecure: TLS certificates are NOT checked; anyone on the path can read and change this connection.").ConfigureAwait(false);
        }

        var time = TimeProvider.System;
        var writer = new EventWriter(console, settings.Json, time);
        var everConnected = 0;
        options.BeforeConnect = (context, _) =>
        {
            writer.Write(writer.Line("connecting") with { Attempt = context.Attempt, Data = context.Uri.ToString() });
            return ValueTask.CompletedTask;
        };

        using var maxTime = settings.MaxTimeSeconds is { } seconds ? new CancellationTokenSource(TimeSpan.FromSeconds(seconds), time) : new CancellationTokenSource();
        // The process ends the command if it cannot end itself (a write stuck on a full stdout pipe nobody reads).
        using var reportDeadline = maxTime.Token.UnsafeRegister(static c => ((CliConsole)c!).ReportStop(ExitCodes.TimedOut), console);
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, maxTime.Token);
        await using var client = new LifelineClient(options);
        client.StateChanged += (_, change) => OnStateChanged(writer, change, client, ref everConnected);
        client.SessionLost += (_, lost) => writer.Write(writer.Line("session-lost") with { Session = Describe(lost) });

        _ = client.StartAsync(CancellationToken.None).ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        var reading = PrintMessagesAsync(client, writer);
        var inputEnded = settings.ReadStdin
            ? SendInputAsync(console, settings, client, ending.Token)
            : new TaskCompletionSource<bool>().Task;
        var waitForEnd = Task.Delay(Timeout.Infinite, ending.Token);
        var finished = await Task.WhenAny(client.Completion, inputEnded, waitForEnd).ConfigureAwait(false);
        var endedByInput = finished == inputEnded && inputEnded.IsCompletedSuccessfully && inputEnded.Result;
        if (finished == inputEnded && !endedByInput)
        {
            await Task.WhenAny(client.Completion, waitForEnd).ConfigureAwait(false);
        }
        if (!client.Completion.IsCompleted)
        {
            var reason = cancellationToken.IsCancellationRequested ? "interrupted" : maxTime.IsCancellationRequested ? "max time reached" : "end of input";
            try
            {
                await client.StopAsync(CloseCode.NormalClosure, reason, CancellationToken.None).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                // Already torn down.
            }
        }

        await client.Completion.ConfigureAwait(false);
        await reading.ConfigureAwait(false);

        if (cancellationToken.IsCancellationRequested)
        {
            return ExitCodes.Interrupted;
        }

        if (maxTime.IsCancellationRequested && !endedByInput)
        {
            await console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"lifeline: --max-time {settings.MaxTimeSeconds} s reached; closed")).ConfigureAwait(false);
            return ExitCodes.TimedOut;
        }

        if (endedByInput)
        {
            return ExitCodes.Success;
        }

        if (Volatile.Read(ref everConnected) == 0)
        {
            var cause = policy.StopReason ?? client.LastFailure?.Description ?? client.LastClose?.ToString() ?? "unknown";
            await console.Error.WriteLineAsync($"error: could not connect to {options.Uri}: {Describe(client.LastFailure, cause)}").ConfigureAwait(false);
            return ExitCodes.CouldNotConnect;
        }

        // A normal close is a success; anything else means the policy gave up.
        if (client.LastClose?.Code == CloseCode.NormalClosure)
        {
            return ExitCodes.Success;
        }

        if (policy.StopReason is { } stopReason)
        {
            await console.Error.WriteLineAsync($"lifeline: stopped reconnecting: {stopReason}").ConfigureAwait(false);
        }

        return ExitCodes.ClosedByPolicy;
    }

    private static string Describe(ConnectFailure? failure, string cause) =>
        failure?.Cause == ConnectFailureCause.HostNotFound || cause.Contains("host name", StringComparison.Ordinal)
            ? $"{cause} ({failure?.Exception?.GetBaseException().Message ?? "no such host"})"
            : cause;

    private static void OnStateChanged(EventWriter writer, LifelineStateChangedEventArgs change, LifelineClient client, ref int everConnected)
    {
        switch (change.Current)
        {
            case LifelineClientState.Connected:
                Volatile.Write(ref everConnected, 1);
                var id = client.SessionId?.ToString() ?? string.Empty;
                writer.Write(writer.Line("connected") with
                {
                    Attempt = change.Attempt,
                    Session = change.SessionResumed is { } resumed ? new SessionInfo(id, resumed) : null,
                });
                if (change.SessionResumed == true)
                {
                    writer.Write(writer.Line("resumed") with
                    {
                        Session = new SessionInfo(id, true, change.MessagesReplayedToServer ?? 0, change.MessagesReplayedFromServer ?? 0),
                    });
                }

                break;
            case LifelineClientState.Reconnecting:
                WriteClosed(writer, change.Close);
                writer.Write(writer.Line("reconnecting") with
                {
                    Code = change.Close?.Code.Value,
                    Reason = change.Close?.Reason,
                    DelayMs = (long?)change.ReconnectDelay?.TotalMilliseconds,
                    Attempt = change.Attempt,
                    Cause = change.Failure?.Description ?? change.Close?.Description,
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
                    Cause = change.Failure?.Description ?? change.Close?.Description,
                });
                break;
        }
    }

    private static SessionInfo Describe(SessionLostEventArgs lost) => new(lost.SessionId.ToString(), false)
    {
        LostReason = lost.Refused ? "refused" : lost.Reason switch
        {
            SessionLostReason.NotFound => "not-found",
            SessionLostReason.ReplayUnavailable => "replay-unavailable",
            SessionLostReason.BufferFull => "buffer-full",
            SessionLostReason.Expired => "expired",
            var other => ((int)other).ToString(CultureInfo.InvariantCulture),
        },
        Refused = lost.Refused,
        LostByServer = lost.LostByServer,
        ServerLastReceived = lost.ServerLastReceived,
        LostFromServer = SequenceSpan.From(lost.LostFromServer),
        UnconfirmedToServer = SequenceSpan.From(lost.UnconfirmedToServer),
    };

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
            Cause = close.Description,
        });
    }

    private static async Task PrintMessagesAsync(LifelineClient client, EventWriter writer)
    {
        await foreach (var message in client.ReadAllAsync().ConfigureAwait(false))
        {
            // "binary" tells base64 of a binary message from a text message that reads the same.
            var binary = message.Type != WebSocketMessageType.Text;
            var data = binary ? Convert.ToBase64String(message.Data.Span) : message.Text;
            writer.Write(writer.Line("message") with { Data = data, Binary = binary });
        }
    }

    /// <summary>
    /// Sends every line of stdin; a line over the limit is refused on stderr and the next ones still go. Completes
    /// normally once stdin ended and every accepted line was written to a socket (or the client closed).
    /// </summary>
    private static async Task<bool> SendInputAsync(CliConsole console, Settings settings, LifelineClient client, CancellationToken cancellationToken)
    {
        var lines = LineReader.Start(console.Input, settings.MaxMessage);
        long accepted = 0;
        try
        {
            await foreach (var line in lines.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (line.TooLong)
                {
                    await console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"error: line {line.Number} is {line.Length} bytes, longer than --max-message ({settings.MaxMessage} bytes); not sent")).ConfigureAwait(false);
                    continue;
                }

                if (!settings.Binary && !System.Text.Unicode.Utf8.IsValid(line.Data))
                {
                    // A text message must be UTF-8: the server would close the connection with 1007 for it.
                    await console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"error: line {line.Number} is not valid UTF-8, which a text message must be; not sent (--binary sends lines as bytes)")).ConfigureAwait(false);
                    continue;
                }

                try
                {
                    await client.SendAsync(line.Data, settings.Binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, cancellationToken).ConfigureAwait(false);
                }
                catch (ArgumentException e)
                {
                    // Session mode: over the server's frame limit or the replay buffer. Refused like a line over --max-message.
                    await console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"error: line {line.Number}: {e.Message}; not sent")).ConfigureAwait(false);
                    continue;
                }

                accepted++;
            }
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            return false; // the client closed: nothing more can be sent
        }

        // End of input: wait until connected and what was accepted has gone out (or cannot any more), then the caller closes.
        while (!client.Completion.IsCompleted)
        {
            var statistics = client.Statistics;
            // In session mode "gone out" means acknowledged by the server (handed to its application), not just written.
            if (client.State == LifelineClientState.Connected && statistics.MessagesSent + statistics.MessagesDroppedQueueFull + statistics.MessagesDroppedStale + statistics.MessagesDroppedTooLarge >= accepted && statistics.QueuedBytes == 0
                && client.UnacknowledgedMessages == 0)
            {
                return true;
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        return false;
    }
}
