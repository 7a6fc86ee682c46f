using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Lifeline.FaultProxy;

/// <summary>Ports on 127.0.0.1 for servers that a test (or a demo) stops and starts again on the same port.</summary>
public static class LoopbackPorts
{
    // A port handed out stays free until its server binds it, so a second call before then could be given it again.
    private static readonly ConcurrentDictionary<int, byte> HandedOut = new();

    /// <summary>
    /// A port free on 127.0.0.1 now, below the kernel's range for outgoing connections, and never handed out before
    /// by this process. A port picked by binding port 0 comes from that range: while its server is down for a restart,
    /// an outgoing connection (a client reconnecting to that very port, even) can be given it, and the server cannot
    /// bind it again. Below the range only another listener can take it.
    /// </summary>
    /// <remarks>
    /// Linux only: elsewhere, and where the range starts too low to leave 1,000 ports between 10,000 and it (for example
    /// <c>1024 65535</c>), the port comes from binding port 0, with the race described above. Ports handed out are
    /// remembered per process: test assemblies running side by side can still pick the same port, which the second
    /// server then fails to bind.
    /// </remarks>
    public static int ForRestartableServer()
    {
        var low = OperatingSystem.IsLinux() ? EphemeralRangeStart() : 0;
        var from = Math.Max(10_000, low - 12_000);
        if (low - from >= 1_000)
        {
            for (var attempt = 0; attempt < 200; attempt++)
            {
                var port = Random.Shared.Next(from, low);
                if (!HandedOut.ContainsKey(port) && IsFree(port) && HandedOut.TryAdd(port, 0))
                {
                    return port;
                }
            }
        }

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var probe = new TcpListener(IPAddress.Loopback, port);
            probe.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int EphemeralRangeStart()
    {
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return int.Parse(parts[0], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException or IndexOutOfRangeException)
        {
            return 32_768; // Linux's default
        }
    }
}
