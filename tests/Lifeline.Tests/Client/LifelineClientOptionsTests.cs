using Lifeline.Client;
using Lifeline.Reconnect;

namespace Lifeline.Tests.Client;

/// <summary>Options objects are held by every client for its life: what they carry by default is idle memory per connection.</summary>
public sealed class LifelineClientOptionsTests
{
    [Fact]
    public void NewOptions_KeepingTheDefaultPolicy_ShareOnePolicy()
    {
        var first = new LifelineClientOptions();
        var second = new LifelineClientOptions();

        Assert.IsType<DefaultReconnectPolicy>(first.ReconnectPolicy);
        Assert.Same(first.ReconnectPolicy, second.ReconnectPolicy);
    }

    [Fact]
    public void NewOptions_WithDefaults_AllocateNoPolicyAndNoSubprotocolListOfTheirOwn()
    {
        _ = new LifelineClientOptions(); // type initialisers (the shared policy) run outside the measurement
        var allocated = Allocations.FewestBytes(static () => GC.KeepAlive(new LifelineClientOptions()));

        // The options object and its send-queue options: 248 B. A policy with its own options (176 B) and an empty
        // subprotocol list (32 B) made 456 B; either one alone would be 424 or 280 B.
        Assert.InRange(allocated, 1, 256);
    }

    [Fact]
    public void SubProtocols_AddedToNewOptions_AreOfferedInOrder()
    {
        var options = new LifelineClientOptions();
        Assert.Empty(options.OfferedSubProtocols);

        options.SubProtocols.Add("chat.v2");
        options.SubProtocols.Add("chat.v1");

        Assert.Equal(["chat.v2", "chat.v1"], options.OfferedSubProtocols);
    }
}
