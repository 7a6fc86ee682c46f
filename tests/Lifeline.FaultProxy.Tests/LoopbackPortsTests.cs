using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Lifeline.FaultProxy.Tests;

public sealed class LoopbackPortsTests
{
    [Fact]
    public void ForRestartableServer_CalledManyTimes_GivesDistinctFreePortsBelowTheEphemeralRange()
    {
        Assert.True(OperatingSystem.IsLinux(), "this suite runs on Linux: the helper's point there is the range below the kernel's ephemeral ports");
        var low = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
        Assert.True(low >= 11_000, $"the ephemeral range starts at {low}: no room below it for the helper on this machine");

        // 1,000 picks from about 12,000 ports: without the record of ports handed out, two would almost surely match.
        var ports = Enumerable.Range(0, 1_000).Select(_ => LoopbackPorts.ForRestartableServer()).ToList();

        Assert.Equal(ports.Count, ports.Distinct().Count());
        Assert.All(ports, port => Assert.InRange(port, 10_000, low - 1));
        using var listener = new TcpListener(IPAddress.Loopback, ports[^1]);
        listener.Start(); // free: a server can bind it
    }
}
