using System.Text.RegularExpressions;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>Runs <c>lifeline serve --urls http://127.0.0.1:0</c> in-process and reads back the port it chose.</summary>
internal static partial class ServeProcess
{
    public static Task<(CliProcess Cli, int Port)> StartAsync(params string[] extra) => StartOnPortAsync(0, extra);

    /// <summary>Starts <c>lifeline serve</c> on a given port (0: a free one), e.g. again on the port of a server that just stopped.</summary>
    public static async Task<(CliProcess Cli, int Port)> StartOnPortAsync(int port, params string[] extra)
    {
        var cli = CliProcess.Start(string.Empty, ["serve", "--urls", $"http://127.0.0.1:{port}", .. extra]);
        await Wait.UntilAsync(() => Listening().IsMatch(cli.Output) || cli.Exit.IsCompleted, what: "lifeline serve to listen");
        var match = Listening().Match(cli.Output);
        Assert.True(match.Success, "lifeline serve did not start: " + cli.Error);
        return (cli, int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"listening on http://127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();
}
