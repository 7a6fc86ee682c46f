using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Lifeline.Cli;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary><c>lifeline demo</c> run as the real process: the JSON summary, bad options, and Ctrl-C in the middle of a run.</summary>
[Collection(ToolProcessCollection.Name)]
public sealed partial class ProcessDemoTests
{
    private static readonly string[] Incidents = ["link-drop", "black-hole", "restart", "shed", "idle-cut"];
    private static readonly string[] Kinds = ["session", "plain", "naive"];

    private static readonly string[] Fields =
    [
        "clients", "affected", "detected", "detectMs", "detectMaxMs", "back", "allBackMs", "peakReconnectsPerSecond",
        "sent", "received", "lost", "duplicated", "sessionsResumed", "sessionsLost",
    ];

    [Fact]
    public async Task Demo_FiveClientsJson_EveryIncidentAndKindAndNoSessionLoss()
    {
        await using var tool = ToolProcess.Start("demo", "--clients", "5", "--json");
        tool.CloseInput();

        // About 20 s on an idle machine; the bound leaves room for a loaded one.
        var exit = await tool.Exit.WaitAsync(TimeSpan.FromSeconds(150));

        Assert.True(exit == ExitCodes.Success, $"exit {exit}; stderr: {tool.Error}");
        var lines = ToolProcess.CompleteLines(tool.Output).Where(line => line.Length > 0).ToList();
        var summary = Assert.Single(lines); // progress goes to stderr
        using var document = JsonDocument.Parse(summary);
        var incidents = document.RootElement.GetProperty("incidents").EnumerateArray().ToList();
        Assert.Equal(Incidents, incidents.Select(i => i.GetProperty("name").GetString()));
        foreach (var incident in incidents)
        {
            Assert.True(incident.GetProperty("closeCode").GetInt32() is 1006 or 1012 or 1013);
            Assert.False(string.IsNullOrEmpty(incident.GetProperty("explanation").GetString()));
            foreach (var kind in Kinds)
            {
                var figures = incident.GetProperty(kind);
                foreach (var field in Fields)
                {
                    Assert.True(figures.TryGetProperty(field, out _), $"{incident.GetProperty("name")}.{kind} has no '{field}'");
                }

                Assert.Equal(5, figures.GetProperty("clients").GetInt32());
                Assert.True(figures.GetProperty("sent").GetInt64() > 0, $"{incident.GetProperty("name")}.{kind} sent nothing");
            }

            var session = incident.GetProperty("session");
            var name = incident.GetProperty("name").GetString();
            Assert.True(session.GetProperty("lost").GetInt64() == 0, $"{name}: a session client lost messages: {session}");
            Assert.True(session.GetProperty("duplicated").GetInt64() == 0, $"{name}: a session client received duplicates: {session}");
            Assert.True(session.GetProperty("received").GetInt64() > 0, $"{name}: session clients received nothing");
        }

        Assert.True(document.RootElement.GetProperty("sessionsLossless").GetBoolean());
        Assert.Contains("incident 1/5: link-drop", tool.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--clients", "0", "--clients must be a whole number from 1 to 1000, not 0.")]
    [InlineData("--clients", "many", "--clients must be a whole number from 1 to 1000, not many.")]
    [InlineData("--seed", "-1", "--seed must be a whole number from 0 to 2147483647, not -1.")]
    [InlineData("--incidents", "earthquake", "--incidents: 'earthquake' is not an incident; use link-drop, black-hole, restart, shed, idle-cut (comma-separated), or all.")]
    public async Task Demo_BadOptionValue_ErrorAndUsage_Exit2(string option, string value, string message)
    {
        var (exit, output, error) = await ToolProcess.RunAsync("demo", option, value);

        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Equal(string.Empty, output);
        Assert.StartsWith($"error: {message}\n", error, StringComparison.Ordinal);
        Assert.Contains("usage: run 'lifeline demo --help'", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_CtrlCMidRun_Exits130AndLeavesNoListeningPort()
    {
        await using var tool = ToolProcess.Start("demo", "--clients", "5");
        tool.CloseInput();
        await tool.WaitForOutputAsync("incident 1/5", TimeSpan.FromSeconds(60));
        var ports = Ports().Match(tool.Output);
        Assert.True(ports.Success, tool.Output);
        var server = int.Parse(ports.Groups[1].Value, CultureInfo.InvariantCulture);
        var proxy = int.Parse(ports.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.False(IsFree(server), "the demo server should be listening before the signal");

        tool.Signal(ToolProcess.SIGINT);

        Assert.Equal(ExitCodes.Interrupted, await tool.Exit.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("demo interrupted", tool.Error, StringComparison.Ordinal);
        Assert.True(IsFree(server), $"port {server} (server) is still in use");
        Assert.True(IsFree(proxy), $"port {proxy} (proxy) is still in use");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"server 127\.0\.0\.1:(\d+) .*fault proxy 127\.0\.0\.1:(\d+)")]
    private static partial Regex Ports();
}
