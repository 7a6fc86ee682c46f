using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Lifeline.TestSupport;

/// <summary>Ports for servers a test starts later on a port it must name first (a process, or a node that comes back on its port).</summary>
internal static class ServerPorts
{
    // A port handed out is free until its server binds it, so a second call before then could be given it again (three
    // Redis nodes picked in a row). Within one test process no port is handed out twice.
    private static readonly ConcurrentDictionary<int, byte> HandedOut = new();

    /// <summary>
    /// A port free on 127.0.0.1 now, below the kernel's ephemeral range. A port picked by binding port 0 comes from that
    /// range, and an outgoing connection of a test running alongside can be given it before the server binds it
    /// ("address already in use", seen in CI). Below the range only another listener can take it.
    /// </summary>
    public static int Unused()
    {
        var (low, _) = EphemeralRange();
        var from = Math.Max(10_000, low - 12_000);
        if (low - from >= 1_000)
        {
            for (var attempt = 0; attempt < 200; attempt++)
            {
                var port = Random.Shared.Next(from, low);
                if (HandedOut.ContainsKey(port))
                {
                    continue;
                }

                try
                {
                    using var probe = new TcpListener(IPAddress.Loopback, port);
                    probe.Start();
                    if (HandedOut.TryAdd(port, 0))
                    {
                        return port;
                    }
                }
                catch (SocketException)
                {
                    // Taken: try another.
                }
            }
        }

        using var listener = new TcpListener(IPAddress.Loopback, 0); // no room below the range: the old way
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static (int Low, int High) EphemeralRange()
    {
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return (32_768, 60_999); // Linux's default
        }
    }
}
