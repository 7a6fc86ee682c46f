using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Lifeline.Diagnostics.Probe;
using Lifeline.Diagnostics.Raw;
using Lifeline.Diagnostics.Tests.Infrastructure;
using Lifeline.Diagnostics.Tests.Raw;

namespace Lifeline.Diagnostics.Tests.Probe;

public sealed class WebSocketProbeTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static Task<ProbeResult> RunAsync(ProbeOptions options, IProgress<ProbeProgress>? progress = null) =>
        WebSocketProbe.RunAsync(options, progress).WaitAsync(Bound);

    [Fact]
    public async Task RunAsync_OpenEndpoint_TimesEveryStepPingsAndClosesWith1000()
    {
        await using var server = await TestServer.StartAsync();
        var progress = new Recorder<ProbeProgress>();

        var result = await RunAsync(new ProbeOptions(server.Uri("/ws")) { Pings = 3, WatchDuration = TimeSpan.Zero, SubProtocols = ["lifeline.test"] }, progress);

        Assert.True(result.Succeeded);
        Assert.Null(result.Failure);
        Assert.Equal([IPAddress.Loopback], result.Addresses);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, server.Port), result.RemoteEndPoint);
        Assert.True(result.DnsTime >= TimeSpan.Zero && result.TcpTime >= TimeSpan.Zero && result.UpgradeTime >= TimeSpan.Zero);
        Assert.Null(result.TlsTime);
        Assert.Equal(101, result.Response!.StatusCode);
        Assert.Equal("websocket", result.Response.GetHeaderMap()["upgrade"], StringComparer.OrdinalIgnoreCase);
        Assert.Equal("lifeline.test", result.SubProtocol);
        Assert.Equal(3, result.PingRoundTrips.Count);
        Assert.Equal(0, result.PingsLost);
        Assert.Equal(ConnectionEndKind.StillOpen, result.End!.Kind);
        Assert.True(result.ClosedByProbe);
        Assert.Null(result.End.ObservedCode);
        Assert.Equal(
            [ProbeStage.Dns, ProbeStage.Tcp, ProbeStage.Upgrade, ProbeStage.Ping, ProbeStage.Ping, ProbeStage.Ping, ProbeStage.Watch],
            progress.Items.Select(p => p.Stage));
    }

    [Fact]
    public async Task RunAsync_ServerClosesWith1008_ReportsTheCloseFrameAndReason()
    {
        await using var server = await TestServer.StartAsync();

        var result = await RunAsync(new ProbeOptions(server.Uri("/close/1008?reason=token%20expired")) { Pings = 0, WatchDuration = Bound });

        Assert.True(result.Succeeded);
        Assert.False(result.ClosedByProbe);
        Assert.Equal(ConnectionEndKind.CloseFrame, result.End!.Kind);
        Assert.Equal(1008, result.End.CloseCode);
        Assert.Equal(1008, result.End.ObservedCode);
        Assert.Equal("token expired", result.End.CloseReason);
    }

    [Fact]
    public async Task RunAsync_CancelledWhileWatching_ReturnsWhatItMeasured_MarkedInterrupted()
    {
        // Before, a cancelled probe threw away its timings and pings (the CLI printed nothing on Ctrl-C).
        await using var server = await TestServer.StartAsync();
        using var stop = new CancellationTokenSource();
        var progress = new CallbackProgress(p =>
        {
            if (p.Stage == ProbeStage.Watch)
            {
                stop.Cancel(); // the connection is open and pinged: the watch would last a minute
            }
        });

        var result = await WebSocketProbe.RunAsync(
            new ProbeOptions(server.Uri("/ws")) { Pings = 2, WatchDuration = TimeSpan.FromMinutes(1) }, progress, stop.Token).WaitAsync(Bound);

        Assert.True(result.Interrupted);
        Assert.True(result.Succeeded);
        Assert.Equal(101, result.Response!.StatusCode);
        Assert.Equal(2, result.PingRoundTrips.Count);
        Assert.Null(result.End); // how it would have ended is unknown
        Assert.True(result.ClosedByProbe); // closed with 1000, not left open
    }

    [Fact]
    public async Task RunAsync_CancelledDuringAPing_ThePingIsNotCountedLost()
    {
        // Before, the ping's wait swallowed the caller's cancellation and came back as "no pong": a ping lost that was
        // never lost (and after the watch, a silent drop that never happened).
        using var server = RawServer.Start([]); // answers the upgrade, then never a ping
        using var stop = new CancellationTokenSource();
        var progress = new CallbackProgress(p =>
        {
            if (p.Stage == ProbeStage.Upgrade)
            {
                stop.Cancel(); // the first ping then waits on a cancelled token
            }
        });

        var result = await WebSocketProbe.RunAsync(
            new ProbeOptions(server.Uri) { Pings = 3, PingTimeout = TimeSpan.FromMinutes(1), WatchDuration = TimeSpan.FromMinutes(1) }, progress, stop.Token).WaitAsync(Bound);

        Assert.True(result.Interrupted);
        Assert.Equal(0, result.PingsLost);
        Assert.Empty(result.PingRoundTrips);
        Assert.Null(result.End);
    }

    [Fact]
    public async Task RunAsync_CancelledBeforeTheConnectionOpened_Throws()
    {
        using var silent = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0); // takes TCP, never answers the upgrade
        silent.Start();
        using var stop = new CancellationTokenSource();
        var probe = WebSocketProbe.RunAsync(new ProbeOptions(new Uri($"ws://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/ws")) { ConnectTimeout = TimeSpan.FromMinutes(1) }, null, stop.Token);
        using var accepted = await silent.AcceptTcpClientAsync().WaitAsync(Bound);

        await stop.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => probe.WaitAsync(Bound));
    }

    private sealed class CallbackProgress(Action<ProbeProgress> report) : IProgress<ProbeProgress>
    {
        public void Report(ProbeProgress value) => report(value);
    }

    [Fact]
    public async Task RunAsync_ClosedPort_FailsAtTcpWithConnectionRefused()
    {
        var port = TestServer.ClosedPort();

        var result = await RunAsync(new ProbeOptions(new Uri($"ws://127.0.0.1:{port}/ws")));

        Assert.False(result.Succeeded);
        Assert.Equal(ProbeStage.Tcp, result.Failure!.Stage);
        Assert.Equal(ConnectionFailureReason.ConnectionRefused, result.Failure.Reason);
        Assert.Contains("connection refused", result.Failure.Message, StringComparison.Ordinal);
        Assert.NotNull(result.DnsTime);
        Assert.Null(result.TcpTime);
        Assert.Null(result.UpgradeTime);
        Assert.Null(result.End);
        Assert.Equal([IPAddress.Loopback], result.Addresses); // what it tried, though nothing answered
        Assert.Null(result.RemoteEndPoint);
    }

    [Fact]
    public async Task RunAsync_HostNameLongerThanDnsAllows_FailsAtDnsAsNotResolved()
    {
        // Five labels of 60 characters: 304 in all, over DNS's 253. Before, the resolver's ArgumentOutOfRangeException
        // escaped the probe.
        var host = string.Join('.', Enumerable.Repeat(new string('a', 60), 5));

        var result = await RunAsync(new ProbeOptions(new Uri($"ws://{host}/ws")));

        Assert.Equal(ProbeStage.Dns, result.Failure!.Stage);
        Assert.Equal(ConnectionFailureReason.NameNotResolved, result.Failure.Reason);
    }

    [Fact]
    public async Task RunAsync_HostNameOnAClosedPort_ReportsTheAddressesItResolvedAndTried()
    {
        var port = TestServer.ClosedPort();

        var result = await RunAsync(new ProbeOptions(new Uri($"ws://localhost:{port}/ws")));

        Assert.Equal(ProbeStage.Tcp, result.Failure!.Stage);
        Assert.NotEmpty(result.Addresses); // before, a failed probe reported none: which address was refused was lost
        Assert.All(result.Addresses, a => Assert.True(IPAddress.IsLoopback(a), $"{a} is not a loopback address"));
    }

    [Fact]
    public async Task RunAsync_NoEndpointAtThePath_FailsAtUpgradeWith404()
    {
        await using var server = await TestServer.StartAsync();

        var result = await RunAsync(new ProbeOptions(server.Uri("/nothing-here")));

        Assert.Equal(ProbeStage.Upgrade, result.Failure!.Stage);
        Assert.Equal(ConnectionFailureReason.UpgradeRefused, result.Failure.Reason);
        Assert.Equal(404, result.Failure.Response!.StatusCode);
        Assert.Same(result.Failure.Response, result.Response);
        Assert.NotNull(result.UpgradeTime);
        Assert.Null(result.SubProtocol);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, server.Uri("/").Port), result.RemoteEndPoint); // the server that refused
        Assert.Equal([IPAddress.Loopback], result.Addresses);
    }

    [Fact]
    public void Options_HeaderPartsThatWouldBreakTheRequest_AreRefusedByTheSetter()
    {
        // A line break in Origin was written into the upgrade request as it was: a header of the caller's making.
        var uri = new Uri("ws://127.0.0.1:1/");
        Assert.Throws<ArgumentException>(() => new ProbeOptions(uri) { Origin = "a\r\nX-Injected: 1" });
        Assert.Throws<ArgumentException>(() => new ProbeOptions(uri) { SubProtocols = ["a b"] });
        Assert.Throws<ArgumentException>(() => new ProbeOptions(uri) { SubProtocols = ["ok", "x\r\ny"] });
        Assert.Throws<ArgumentException>(() => new Lifeline.Diagnostics.IdleScan.IdleScanOptions(uri) { Origin = "a\nb" });
        Assert.Throws<ArgumentException>(() => new Lifeline.Diagnostics.IdleScan.IdleScanOptions(uri) { SubProtocols = ["x,y"] });

        // Not ASCII: the handshake is written as ASCII, which sent '?' for each such character.
        Assert.Contains("ASCII", Assert.Throws<ArgumentException>(() => new ProbeOptions(uri) { Origin = "https://bücher.example" }).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new Lifeline.Diagnostics.IdleScan.IdleScanOptions(uri) { Origin = "https://bücher.example" });

        var options = new ProbeOptions(uri) { Origin = "https://app.example", SubProtocols = ["lifeline.v1", "chat"] };
        Assert.Equal("https://app.example", options.Origin);
        Assert.Equal(["lifeline.v1", "chat"], options.SubProtocols);
    }

    [Theory]
    [InlineData("")]
    [InlineData("other")]
    public async Task RunAsync_ServerChoosesASubprotocolNotOffered_FailsAsClientsDo(string offered)
    {
        using var server = RawServer.Start([], "Sec-WebSocket-Protocol: chat\r\n");

        var result = await RunAsync(new ProbeOptions(server.Uri) { Pings = 0, WatchDuration = TimeSpan.Zero, SubProtocols = offered.Length == 0 ? [] : [offered] }, null);

        // Before, the probe carried on as if connected; ClientWebSocket and browsers refuse such an answer.
        Assert.Equal(ConnectionFailureReason.UnrequestedSubProtocol, result.Failure?.Reason);
        Assert.Contains("'chat'", result.Failure!.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x8000_0000_0000_0000UL, 1002)]
    [InlineData(ulong.MaxValue, 1002)]
    [InlineData(1UL << 40, 1009)]
    public async Task RunAsync_ServerSendsAnImpossible64BitLength_EndsWithAProtocolErrorAndSendsTheCode(ulong length, int expected)
    {
        using var server = RawServer.Start([0x82, 127, .. FrameReaderTests.BigEndian64(length), 1, 2, 3, 4]);

        var result = await RunAsync(new ProbeOptions(server.Uri) { Pings = 0, WatchDuration = Bound });
        var sent = await server.Received.WaitAsync(Bound);

        Assert.Equal(ConnectionEndKind.ProtocolError, result.End!.Kind);
        Assert.Equal(expected, result.End.CloseCode);
        Assert.Equal(expected, result.End.ObservedCode);
        Assert.False(result.ClosedByProbe);
        var (code, reason) = FirstCloseFrame(sent);
        Assert.Equal(expected, code);
        Assert.Equal(result.End.CloseReason, reason);
    }

    [Fact]
    public async Task RunAsync_ServerSendsAFragmentedPing_EndsWith1002()
    {
        using var server = RawServer.Start(FrameReaderTests.Frame(RawFrame.Ping, [1], fin: false));

        var result = await RunAsync(new ProbeOptions(server.Uri) { Pings = 0, WatchDuration = Bound });

        Assert.Equal(ConnectionEndKind.ProtocolError, result.End!.Kind);
        Assert.Equal(1002, result.End.CloseCode);
        Assert.Contains("fragmented", result.End.CloseReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_OutOfRangeValues_ThrowAtOnce()
    {
        var options = new ProbeOptions(new Uri("ws://127.0.0.1/"));

        Assert.Throws<ArgumentException>(() => new ProbeOptions(new Uri("http://127.0.0.1/")));
        Assert.Throws<ArgumentException>(() => options.Uri = new Uri("/relative", UriKind.Relative));
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Pings = -1);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Pings = 1001);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.ConnectTimeout = TimeSpan.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.PingTimeout = TimeSpan.FromSeconds(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => options.WatchDuration = TimeSpan.FromSeconds(-1));
        Assert.Contains("49 days", Assert.Throws<ArgumentOutOfRangeException>(() => options.PingInterval = TimeSpan.FromDays(50)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => options.TimeProvider = null!);
        Assert.Equal((5, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10)), (options.Pings, options.ConnectTimeout, options.WatchDuration));
    }

    /// <summary>The code and reason of the first frame a client sent, which must be a masked Close frame.</summary>
    private static (int Code, string Reason) FirstCloseFrame(byte[] data)
    {
        Assert.True(data.Length >= 8, "the client sent no Close frame");
        Assert.Equal(0x88, data[0]);
        Assert.Equal(0x80, data[1] & 0x80);
        var length = data[1] & 0x7F;
        var payload = data.AsSpan(6, length).ToArray();
        for (var i = 0; i < payload.Length; i++)
        {
            payload[i] ^= data[2 + (i % 4)];
        }

        return (BinaryPrimitives.ReadUInt16BigEndian(payload), Encoding.UTF8.GetString(payload, 2, payload.Length - 2));
    }

    /// <summary>Keeps every report in order, synchronously (Progress&lt;T&gt; would post them elsewhere).</summary>
    internal sealed class Recorder<T> : IProgress<T>
    {
        private readonly ConcurrentQueue<T> _items = new();

        public IReadOnlyList<T> Items => [.. _items];

        public void Report(T value) => _items.Enqueue(value);
    }
}
