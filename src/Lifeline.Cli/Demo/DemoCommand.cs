using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Lifeline.Cli.Demo;

/// <summary>
/// <c>lifeline demo</c>: a Lifeline server, the fault proxy and three kinds of client side by side on 127.0.0.1,
/// through scripted incidents, with live progress and a summary of what each kind of client went through.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(CliConsole console)
    {
        var clients = NumberOptions.Whole("--clients", "Clients of each kind (1-1000).", 100, 1, 1000, "-n");
        var incidents = new Option<string[]>("--incidents", "-i")
        {
            Description = $"Incidents to play, comma-separated, in this order: {DemoIncident.Names} (default: all).",
            AllowMultipleArgumentsPerToken = true,
        };
        var seed = NumberOptions.Whole("--seed", "Seed for the jitter, the retry hints and which clients a shed hits.", 1, 0, int.MaxValue);
        var json = CommonOptions.Json("Print the summary as one JSON document (progress goes to stderr).");
        var command = new Command("demo", "Watch links die and a server restart while Lifeline clients keep every message: three kinds of client side by side through scripted incidents.")
        {
            clients, incidents, seed, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var chosen = result.GetValue(incidents) is { Length: > 0 } names ? DemoIncident.Parse(names) : DemoIncident.All;
            var settings = new DemoSettings((int)result.GetValue(clients), chosen, (int)result.GetValue(seed));
            var asJson = result.GetValue(json);
            DemoResult outcome;
            try
            {
                outcome = await RunAsync(console, settings, asJson, cancellationToken).ConfigureAwait(false);
            }
            catch (DemoSetupException e)
            {
                await console.Error.WriteLineAsync($"error: demo: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            if (asJson)
            {
                await console.Output.WriteLineAsync(DemoReport.Json(outcome)).ConfigureAwait(false);
            }
            else
            {
                DemoReport.WriteTable(console, outcome);
            }

            return outcome.SessionsFailed ? ExitCodes.Failure : ExitCodes.Success;
        });
        return command;
    }

    private static async Task<DemoResult> RunAsync(CliConsole console, DemoSettings settings, bool json, CancellationToken cancellationToken)
    {
        // Redrawn in place only where the terminal takes escape codes: with NO_COLOR or TERM=dumb a live display would
        // print its whole block again four times a second.
        var live = !json && console.IsTerminal && console.Rich.Profile.Capabilities.Ansi;
        var lines = json ? console.Error : console.Output;
        var announcements = new List<string>();
        DemoRunner? runner = null;
        void Announce(string line)
        {
            var stamped = string.Create(CultureInfo.InvariantCulture, $"[{(runner?.Traffic.Now ?? 0) / 1000,5:0.0} s] {line}");
            lock (announcements)
            {
                announcements.Add(stamped);
                if (!live)
                {
                    lines.WriteLine(stamped);
                    lines.Flush();
                }
            }
        }

        runner = new DemoRunner(settings, TimeProvider.System, Announce);
        var run = runner.RunAsync(cancellationToken);
        try
        {
            if (live)
            {
                await console.Rich.Live(Render(runner, announcements)).StartAsync(async context =>
                {
                    while (!run.IsCompleted)
                    {
                        await Task.WhenAny(run, Task.Delay(250, CancellationToken.None)).ConfigureAwait(false);
                        context.UpdateTarget(run.IsCompleted ? Announcements(announcements) : Render(runner, announcements));
                    }
                }).ConfigureAwait(false);
            }
            else
            {
                while (!run.IsCompleted)
                {
                    await Task.WhenAny(run, Task.Delay(1000, CancellationToken.None)).ConfigureAwait(false);
                    if (!run.IsCompleted)
                    {
                        lock (announcements)
                        {
                            lines.WriteLine(StatusLine(runner));
                            lines.Flush();
                        }
                    }
                }
            }

            return await run.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await console.Error.WriteLineAsync("demo interrupted: the clients, the server and the proxy were stopped.").ConfigureAwait(false);
            throw;
        }
    }

    private static string StatusLine(DemoRunner runner)
    {
        var now = runner.Traffic.Now;
        var connected = string.Join(", ", Enum.GetValues<ClientKind>().Select(kind =>
            $"{DemoReport.KindName(kind)} {runner.Ledger.OfKind(kind).Count(c => c.IsConnected)}/{runner.Ledger.OfKind(kind).Count()}"));
        var rates = string.Join(", ", Enum.GetValues<ClientKind>().Select(kind => $"{DemoReport.KindName(kind)} {runner.Ledger.AttemptsInLastSecond(kind, now)}"));
        return string.Create(CultureInfo.InvariantCulture, $"[{now / 1000,5:0.0} s]   {runner.Stage}; connected: {connected}; reconnects/s: {rates}");
    }

    private static Rows Render(DemoRunner runner, List<string> announcements)
    {
        var now = runner.Traffic.Now;
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("client").AddColumn(new TableColumn("connected").RightAligned()).AddColumn(new TableColumn("reconnects/s").RightAligned());
        foreach (var kind in Enum.GetValues<ClientKind>())
        {
            var all = runner.Ledger.OfKind(kind).ToList();
            var connected = all.Count(c => c.IsConnected);
            var colour = connected == all.Count ? "green" : connected == 0 ? "red" : "yellow";
            table.AddRow(
                new Text(DemoReport.KindLabel(kind)),
                new Markup($"[{colour}]{connected}/{all.Count}[/]"),
                new Text(runner.Ledger.AttemptsInLastSecond(kind, now).ToString(CultureInfo.InvariantCulture)));
        }

        var current = runner.Current is { } incident
            ? new Markup($"[bold]{Markup.Escape(runner.Stage)}[/]: {Markup.Escape(incident.Explanation)}")
            : new Markup($"[bold]{Markup.Escape(runner.Stage)}[/]");
        return new Rows(Announcements(announcements, 12), new Text(string.Empty), current, table);
    }

    private static Rows Announcements(List<string> announcements, int last = int.MaxValue)
    {
        lock (announcements)
        {
            return new Rows(announcements.TakeLast(last).Select(line => (IRenderable)new Text(line)).ToList());
        }
    }
}
