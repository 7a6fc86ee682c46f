using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary>The real <c>lifeline proxy</c> process running out of file descriptors (EMFILE), as a busy test rig can.</summary>
[Collection(ToolProcessCollection.Name)]
public sealed partial class ProcessFileLimitTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>More connections than the lowered limit leaves descriptors for (each link takes two).</summary>
    private const int Flood = 16;

    [Fact]
    public async Task Proxy_OutOfFileDescriptors_GoesOnAcceptingOnceSomeAreFree()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var tool = ToolProcess.Start("proxy", "--upstream", $"127.0.0.1:{server.Port}");
        await tool.WaitForOutputAsync("type 'help'");
        var port = int.Parse(ProxyPort().Match(tool.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

        // One link first, so the code of a link is loaded: loading an assembly opens its file, and with no descriptor
        // left for that the runtime would fail, not the proxy.
        await using (var first = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo")).WaitAsync(Bound))
        {
            await first.SendTextAsync("before the flood");
            await Wait.UntilAsync(() => first.Messages.Contains("before the flood"), Bound, "the first echo through the proxy");
        }

        await tool.WaitForOutputAsync("link-ended");

        // Room for a few descriptors more than the process holds now: a handful of links, then accept() (or the
        // upstream socket) fails with EMFILE. Before, that one failure ended the accept loop for good while the port
        // stayed open: every later connection sat in the backlog and nothing was forwarded again.
        var open = Directory.GetFiles($"/proc/{tool.Id}/fd").Length;
        var limit = GetFileLimit(tool.Id);
        SetFileLimit(tool.Id, limit with { Current = (ulong)open + 6 }); // the soft limit: raising it back needs no privilege

        var flood = new List<Socket>();
        try
        {
            for (var i = 0; i < Flood; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                flood.Add(socket);
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)); // the kernel's backlog completes it
            }

            try
            {
                await tool.WaitForOutputAsync("accept-failed");
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message} Process alive: {!tool.Exit.IsCompleted}; descriptors before: {open}; " +
                    $"open now: {DescribeDescriptors(tool.Id)}", e);
            }
        }
        finally
        {
            foreach (var socket in flood)
            {
                socket.Dispose();
            }
        }

        // The descriptors come free as the links end; the proxy must take connections again.
        SetFileLimit(tool.Id, limit);
        await using var client = await PlainClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo")).WaitAsync(Bound);
        await client.SendTextAsync("after the flood");
        await Wait.UntilAsync(() => client.Messages.Contains("after the flood"), Bound, "the echo through the proxy");
        Assert.False(tool.Exit.IsCompleted, "the proxy exited: " + tool.Error);
    }

    /// <summary>For a failure's message: what the process holds open.</summary>
    private static string DescribeDescriptors(int pid)
    {
        try
        {
            var targets = Directory.GetFiles($"/proc/{pid}/fd").Select(path => new FileInfo(path).LinkTarget ?? "?");
            return string.Join(", ", targets.GroupBy(t => t.Split(':')[0]).Select(g => $"{g.Count()} {g.Key}"));
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    private static ResourceLimit GetFileLimit(int pid)
    {
        if (PrLimit(pid, ResourceLimitNoFile, IntPtr.Zero, out var value) != 0)
        {
            throw new InvalidOperationException($"prlimit({pid}, RLIMIT_NOFILE) failed: errno {Marshal.GetLastPInvokeError()}");
        }

        return value;
    }

    private static void SetFileLimit(int pid, ResourceLimit limit)
    {
        if (PrLimit(pid, ResourceLimitNoFile, ref limit, IntPtr.Zero) != 0)
        {
            throw new InvalidOperationException($"prlimit({pid}, RLIMIT_NOFILE, {limit.Current}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private const int ResourceLimitNoFile = 7; // RLIMIT_NOFILE on Linux

    [StructLayout(LayoutKind.Sequential)]
    private record struct ResourceLimit(ulong Current, ulong Maximum);

    [DllImport("libc", EntryPoint = "prlimit", SetLastError = true)]
    private static extern int PrLimit(int pid, int resource, ref ResourceLimit newLimit, IntPtr oldLimit);

    [DllImport("libc", EntryPoint = "prlimit", SetLastError = true)]
    private static extern int PrLimit(int pid, int resource, IntPtr newLimit, out ResourceLimit oldLimit);

    [GeneratedRegex(@"proxy listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ProxyPort();
}
