using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Lifeline.FaultProxy;

namespace Lifeline.Benchmarks;

/// <summary>
/// A redis-server of its own on a free port of 127.0.0.1, without persistence (installed by .ci/install-deps); killed
/// on dispose.
/// </summary>
internal sealed class RedisProcess : IAsyncDisposable
{
    private readonly Process _process;

    private RedisProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<RedisProcess> StartAsync()
    {
        var port = LoopbackPorts.ForRestartableServer();
        var start = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, WorkingDirectory = Path.GetTempPath() };
        foreach (var arg in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start; run .ci/install-deps.");
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        var redis = new RedisProcess(process, port);
        var ready = Stopwatch.StartNew();
        while (!await redis.AcceptsAsync())
        {
            if (ready.Elapsed > TimeSpan.FromSeconds(15) || process.HasExited)
            {
                await redis.DisposeAsync();
                throw new InvalidOperationException($"redis-server did not listen on 127.0.0.1:{port} within 15 s.");
            }

            await Task.Delay(50);
        }

        return redis;
    }

    /// <summary>The <c>total_commands_processed</c> figure of <c>INFO stats</c>, read over a plain RESP connection.</summary>
    public async Task<long> CommandsProcessedAsync()
    {
        var info = await CommandAsync("INFO stats");
        var line = info.Split('\n').First(l => l.StartsWith("total_commands_processed:", StringComparison.Ordinal));
        return long.Parse(line.Split(':')[1].Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>Calls per command from <c>INFO commandstats</c> (commands run inside scripts are counted there too).</summary>
    public async Task<Dictionary<string, long>> CommandCallsAsync()
    {
        var calls = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in (await CommandAsync("INFO commandstats")).Split('\n'))
        {
            // cmdstat_get:calls=12,usec=...
            if (line.StartsWith("cmdstat_", StringComparison.Ordinal) && line.IndexOf(":calls=", StringComparison.Ordinal) is var at and > 0)
            {
                var end = line.IndexOf(',', at);
                calls[line[8..at]] = long.Parse(line[(at + 7)..end], CultureInfo.InvariantCulture);
            }
        }

        return calls;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private async Task<bool> AcceptsAsync()
    {
        try
        {
            return (await CommandAsync("PING")).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    // An inline command and one reply read until the server has sent all of it (INFO's bulk reply is small).
    private async Task<string> CommandAsync(string command)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, Port);
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(command + "\r\n"), SocketFlags.None);
        var buffer = new byte[64 * 1024];
        var length = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        do
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, timeout.Token);
            if (read == 0)
            {
                break;
            }

            length += read;
        }
        while (!Complete(buffer.AsSpan(0, length)));

        return System.Text.Encoding.ASCII.GetString(buffer, 0, length);
    }

    private static bool Complete(ReadOnlySpan<byte> reply)
    {
        if (reply.IsEmpty || reply[0] != (byte)'$')
        {
            return reply.EndsWith("\r\n"u8);
        }

        var header = reply.IndexOf("\r\n"u8);
        return header > 0 && int.TryParse(reply[1..header], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
            && reply.Length >= header + 2 + size + 2;
    }
}
