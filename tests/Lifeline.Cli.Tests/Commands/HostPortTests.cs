using Lifeline.Cli.Commands;

namespace Lifeline.Cli.Tests.Commands;

/// <summary>The proxy's HOST:PORT options (--upstream, --listen): what they accept, and the words for what they refuse.</summary>
public sealed class HostPortTests
{
    [Theory]
    [InlineData("127.0.0.1:5000", "127.0.0.1", 5000)]
    [InlineData("localhost:80", "localhost", 80)]
    [InlineData("[::1]:5000", "::1", 5000)]
    [InlineData("[fe80::1%2]:443", "fe80::1%2", 443)]
    [InlineData("my-host.example:65535", "my-host.example", 65535)]
    public void ParseHostPort_Accepts(string text, string host, int port)
    {
        Assert.Equal((host, port), ProxyCommand.ParseHostPort(text, "--upstream"));
    }

    [Theory]
    [InlineData("[::1", "an IPv6 address goes in brackets")]
    [InlineData("[::1]", "an IPv6 address goes in brackets")]
    [InlineData("::1:5000", "put an IPv6 address in brackets, such as [::1]:5000")]
    [InlineData("[localhost]:5000", "in brackets is not an IPv6 address")]
    [InlineData("[fe80::1%nosuch0]:5000", "the zone 'nosuch0' names no network interface of this machine")] // accepted before: every link failed at connect
    [InlineData("a b:5000", "is not a host name or IP address")]
    [InlineData("127.0.0.1:", "has no port after the colon")]
    [InlineData("[::1]:", "has no port after the colon")]
    [InlineData("127.0.0.1", "is not HOST:PORT")]
    public void ParseHostPort_Refuses_SayingWhatIsWrong(string text, string expected)
    {
        var error = Assert.Throws<UsageException>(() => ProxyCommand.ParseHostPort(text, "--upstream"));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
