using Lifeline.Cli.Commands;

namespace Lifeline.Cli.Tests.Commands;

/// <summary>The client options <c>lifeline connect</c> builds from its command line.</summary>
public sealed class ConnectOptionsTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BuildOptions_LinesWaitForTheServerHoweverLongItIsAway(bool session)
    {
        // Before, plain mode kept the library's 30 s bound: a line read during a longer outage was dropped without a
        // word (counted as stale, and as gone out by the end-of-input wait), and the command exited 0.
        var settings = new ConnectCommand.Settings("ws://127.0.0.1:5000/ws", Json: true, KeepAliveSeconds: 15, KeepAliveTimeoutSeconds: 15, StopOn: []) { Session = session };

        var (options, _) = ConnectCommand.BuildOptions(settings);

        Assert.Null(options.SendQueue.MaxAge);
        Assert.Equal(session, options.Session is not null);
    }
}
