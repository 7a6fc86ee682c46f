using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Lifeline.FaultProxy.Tests;

public sealed class LoopbackPortsTests
{
    [Fact]
    public void ForRestartableServer_CalledManyTimes_GivesDistinctFreePortsBelowTheEphemeralRange()
    {
        var low = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);

        var ports = Enumerable.Range(0, 100).Select(_ => LoopbackPorts.ForRestartableServer()).ToList();

        Assert.Equal(ports.Count, ports.Distinct().Count());
        Assert.All(ports, port => Assert.InRange(port, 1_024, low - 1));
        using var listener = new TcpListener(IPAddress.Loopback, ports[^1]);
        listener.Start(); // free: a server can bind it
    }
}
