using System.Net.WebSockets;
using Lifeline.Diagnostics.IdleScan;
using Lifeline.Diagnostics.Probe;
using Lifeline.Diagnostics.Tests.Infrastructure;
using Lifeline.Diagnostics.Tests.Probe;

namespace Lifeline.Diagnostics.Tests.IdleScan;

public sealed class IdleScannerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ScanAsync_ServerClosesEveryConnectionAfterAFixedTime_FindsTheCloseFrameInOneRound_AndThatTrafficDoesNotHelp()
    {
        // /idle-close closes 1.5 s after the upgrade whatever comes meanwhile (the pings the scan sends included): a
        // lifetime, which the silent connection alone reads as an idle timeout.
        await using var server = await TestServer.StartAsync();
        var progress = new WebSocketProbeTests.Recorder<IdleScanProgress>();
        var options = new IdleScanOptions(server.Uri("/idle-close/1500")) { MinSilence = TimeSpan.FromSeconds(0.5), MaxSilence = TimeSpan.FromSeconds(20), Parallel = 1 };

        var result = await IdleScanner.ScanAsync(options, progress).WaitAsync(Bound);

        Assert.Null(result.Failure);
        Assert.True(result.Found);
        Assert.Equal(ConnectionEndKind.CloseFrame, result.KilledBy);
        Assert.Equal(1001, result.CloseCode);
        Assert.Equal("idle", result.CloseReason);
        // Timed by the Close frame's arrival, not by the 20 s silence it cut short.
        Assert.InRange(result.IdleTimeout!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(10));
        Assert.Equal(result.ShortestKilled, result.IdleTimeout);
        Assert.Null(result.LongestSurvived);
        Assert.Equal((1, 1, false), (result.Rounds, result.Connections, result.Interrupted));
        Assert.Equal([IdleScanProgressKind.RoundStarted, IdleScanProgressKind.SilenceKilled],
            progress.Items.Select(p => p.Kind).Where(k => k is not (IdleScanProgressKind.StillWaiting or IdleScanProgressKind.BusyConnectionCut)));
        Assert.Equal([TimeSpan.FromSeconds(20)], progress.Items[0].Silences);

        // The connection pinged every 125 ms (a quarter of the shortest silence) was cut too, by the same Close frame.
        Assert.Equal(TimeSpan.FromMilliseconds(125), result.BusyPingInterval);
        Assert.Equal(ConnectionEndKind.CloseFrame, result.BusyConnectionEnd?.Kind);
        Assert.Equal(1001, result.BusyConnectionEnd!.CloseCode);
        Assert.True(result.CutDespiteTraffic, $"busy cut after {result.BusyConnectionEnd.After}, silent one after {result.ShortestKilled}");
        Assert.False(result.BusyConnectionGaveWay);
        Assert.Single(progress.Items, p => p.Kind == IdleScanProgressKind.BusyConnectionCut);
    }

    [Fact]
    public async Task ScanAsync_NothingCutsTheSilence_ReportsNotFoundWithTheLongestSurvivor()
    {
        await using var server = await TestServer.StartAsync();
        var options = new IdleScanOptions(server.Uri("/ws")) { MinSilence = TimeSpan.FromSeconds(0.2), MaxSilence = TimeSpan.FromSeconds(0.5), Parallel = 2, PongTimeout = TimeSpan.FromSeconds(10) }; // a slow pong is not a cut

        var result = await IdleScanner.ScanAsync(options).WaitAsync(Bound);

        Assert.False(result.Found);
        Assert.Null(result.IdleTimeout);
        Assert.Null(result.KilledBy);
        Assert.Equal(TimeSpan.FromSeconds(0.5), result.LongestSurvived);
        Assert.Equal(TimeSpan.FromSeconds(0.5), result.MaxSilence);
        Assert.Equal(2, result.Connections);
        Assert.Equal(0, result.ServerPings);
        Assert.Equal(0, result.ServerMessages);
        Assert.Null(result.BusyConnectionEnd); // the busy connection lived through the scan too
        Assert.False(result.CutDespiteTraffic);
    }

    [Fact]
    public async Task ScanAsync_ServerStreamsDuringTheSilences_CountsItsMessages()
    {
        // A streaming endpoint keeps the path busy: no idle cut can show. Before, nothing in the result said so, and
        // "none up to --max" read as a clean bill for idle links.
        await using var server = await TestServer.StartAsync();
        var options = new IdleScanOptions(server.Uri("/push/100")) { MinSilence = TimeSpan.FromSeconds(0.5), MaxSilence = TimeSpan.FromSeconds(1), Parallel = 2, PongTimeout = TimeSpan.FromSeconds(10) };

        var result = await IdleScanner.ScanAsync(options).WaitAsync(Bound);

        Assert.False(result.Found);
        Assert.True(result.ServerMessages > 0, $"{result.ServerMessages} messages counted");
    }

    [Fact]
    public async Task ScanAsync_TheBusyConnectionTakesTheServersLastPlace_ItGivesWay_AndTheScanGoesOn()
    {
        // Two places, each held 8 s. The scan's second connection is answered only after 4 s; by then the busy connection
        // (opened once the first was held, which is silent for at least 5 s) has its place, and it is closed with 1013 at once. Without giving way, that refusal before
        // anything was measured would end the scan as "does not hold connections".
        await using var server = await TestServer.StartAsync();
        var options = new IdleScanOptions(server.Uri("/capped/2/8000")) { MinSilence = TimeSpan.FromSeconds(5), MaxSilence = TimeSpan.FromSeconds(10), Parallel = 2 };

        var result = await IdleScanner.ScanAsync(options).WaitAsync(Bound);

        Assert.Null(result.Failure);
        Assert.True(result.Found);
        Assert.False(result.CutDespiteTraffic);
        Assert.Null(result.BusyConnectionEnd);
        Assert.Equal(ConnectionEndKind.CloseFrame, result.KilledBy); // the 8 s lifetime cut the 10 s silence
        // On a loaded machine the busy connection's request may come second instead, wait the 4 s and be the one refused:
        // then nothing had to give way. Either way the scan goes on; without giving way, the refusal ended it.
        Assert.True(result.BusyConnectionGaveWay ? result.Connections == 3 : result.BusyConnectionNotHeld,
            $"busy: gave way {result.BusyConnectionGaveWay}, not held {result.BusyConnectionNotHeld}, watched {result.BusyConnectionWatched}; connections {result.Connections}");
    }

    [Fact]
    public async Task ScanAsync_ClosedPort_ReportsTheConnectFailure()
    {
        var options = new IdleScanOptions(new Uri($"ws://127.0.0.1:{TestServer.ClosedPort()}/")) { MinSilence = TimeSpan.FromSeconds(1), MaxSilence = TimeSpan.FromSeconds(2) };

        var result = await IdleScanner.ScanAsync(options).WaitAsync(Bound);

        Assert.False(result.Found);
        Assert.Equal(ConnectionFailureReason.ConnectionRefused, result.Failure!.Reason);
        Assert.Equal(0, result.Connections);
    }

    [Fact]
    public async Task ScanAsync_ServerEndsEveryConnectionAtOnce_SaysSoInsteadOfReportingATimeoutOfZero()
    {
        // A server that refuses to keep the connection (here 1008 for a missing token) is not an idle timeout: before,
        // the scan reported it as one of about 0 s, with keep-alive advice to match.
        await using var server = await TestServer.StartAsync();
        var options = new IdleScanOptions(server.Uri("/close/1008?reason=token%20missing")) { MinSilence = TimeSpan.FromSeconds(0.5), MaxSilence = TimeSpan.FromSeconds(2), Parallel = 2 };

        var result = await IdleScanner.ScanAsync(options).WaitAsync(Bound);

        Assert.False(result.Found);
        Assert.Null(result.IdleTimeout);
        Assert.Equal(ProbeStage.Ping, result.Failure!.Stage);
        Assert.Equal(ConnectionFailureReason.EndedAtOnce, result.Failure.Reason);
        Assert.Equal((ConnectionEndKind.CloseFrame, 1008, "token missing"), (result.Failure.End!.Kind, result.Failure.End.CloseCode, result.Failure.End.CloseReason));
        Assert.Contains("1008 \"token missing\"", result.Failure.Message, StringComparison.Ordinal);
        Assert.Null(result.ShortestKilled);
    }

    [Fact]
    public async Task ScanAsync_ServerAnswersThePingThenRefusesWith1008_SaysSoInsteadOfReportingATimeout()
    {
        // A server that answers pings by itself and checks a token a moment later: its 1008 came after the first pong.
        await using var server = await TestServer.StartAsync();
        var options = new IdleScanOptions(server.Uri("/idle-close/100?code=1008")) { MinSilence = TimeSpan.FromSeconds(0.5), MaxSilence = TimeSpan.FromSeconds(2), Parallel = 1 };

        var result = await IdleScanner.ScanAsync(options).WaitAsync(Bound);

        Assert.False(result.Found);
        Assert.Equal((ConnectionFailureReason.EndedAtOnce, 1008), (result.Failure!.Reason, result.Failure.End!.CloseCode));
    }

    [Fact]
    public async Task ScanAsync_ServerNeverAnswersPings_SaysSoInsteadOfReportingASilentDrop()
    {
        // The scan tells a live link by its pong. A server that answers none looked like a silent drop after every silence.
        using var server = RawServer.Start([]);
        var options = new IdleScanOptions(server.Uri)
        {
            MinSilence = TimeSpan.FromSeconds(0.5),
            MaxSilence = TimeSpan.FromSeconds(1),
            Parallel = 1,
            PongTimeout = TimeSpan.FromSeconds(1),
            ConnectTimeout = TimeSpan.FromSeconds(2),
        };

        var result = await IdleScanner.ScanAsync(options).WaitAsync(Bound);

        Assert.False(result.Found);
        Assert.Equal((ProbeStage.Ping, ConnectionFailureReason.NoPong), (result.Failure!.Stage, result.Failure.Reason));
        Assert.Null(result.Failure.End);
        Assert.Contains("--pong-timeout", result.Failure.Message, StringComparison.Ordinal);
        Assert.Null(result.ShortestKilled);
        Assert.Equal(1, result.Connections);
    }

    [Fact]
    public async Task ScanAsync_Cancelled_EndsAtOnceMarkedInterrupted()
    {
        await using var server = await TestServer.StartAsync();
        var progress = new WebSocketProbeTests.Recorder<IdleScanProgress>();
        var options = new IdleScanOptions(server.Uri("/ws")) { MinSilence = TimeSpan.FromSeconds(60), MaxSilence = TimeSpan.FromSeconds(600), Parallel = 2 };
        using var cancel = new CancellationTokenSource();

        var scanning = IdleScanner.ScanAsync(options, progress, cancel.Token);
        await cancel.CancelAsync();
        var result = await scanning.WaitAsync(Bound);

        Assert.True(result.Interrupted);
        Assert.False(result.Found);
        Assert.Null(result.Failure);
    }

    [Fact]
    public async Task ScanAsync_Finished_ClosesTheConnectionsStillOpenWith1000()
    {
        // Before, they were dropped without a Close frame and the server recorded 1006 for each. Silences of a second and
        // more, so the busy connection is open well before the end (one still connecting then has nothing to close).
        await using var server = await TestServer.StartAsync();
        var options = new IdleScanOptions(server.Uri("/ws")) { MinSilence = TimeSpan.FromSeconds(1), MaxSilence = TimeSpan.FromSeconds(2), Parallel = 2, PongTimeout = TimeSpan.FromSeconds(10) };

        var result = await IdleScanner.ScanAsync(options).WaitAsync(Bound);

        Assert.False(result.Found);
        await WaitForEveryEndAsync(server);

        // Every silent probe survived (it had its session); only the busy connection could, on a very slow machine, still
        // have been in its upgrade at the end, with nothing to close yet.
        Assert.All(server.WsEnds, end => Assert.True(end is WebSocketCloseStatus.NormalClosure or null, $"ended with {end}"));
        Assert.True(server.WsEnds.Count(end => end == WebSocketCloseStatus.NormalClosure) >= server.WsEnds.Count - 1, string.Join(", ", server.WsEnds));
    }

    [Fact]
    public async Task ScanAsync_Cancelled_ClosesTheOpenConnectionsWith1000()
    {
        await using var server = await TestServer.StartAsync();
        var options = new IdleScanOptions(server.Uri("/ws")) { MinSilence = TimeSpan.FromSeconds(60), MaxSilence = TimeSpan.FromSeconds(600), Parallel = 2 };
        using var cancel = new CancellationTokenSource();
        var scanning = IdleScanner.ScanAsync(options, null, cancel.Token);
        await UntilAsync(() => server.WsAccepted == 3); // two silent connections and the busy one
        await Task.Delay(1000); // time to read the 101 and start each session (nothing the client does can be seen from here)

        await cancel.CancelAsync();
        var result = await scanning.WaitAsync(Bound);

        Assert.True(result.Interrupted);
        await WaitForEveryEndAsync(server);
        Assert.Equal(3, server.WsEnds.Count);

        // A connection still in its upgrade when the scan stopped (a very slow machine) has no session to close; every
        // other one is closed with 1000. Before, none was.
        Assert.All(server.WsEnds, end => Assert.True(end is WebSocketCloseStatus.NormalClosure or null, $"ended with {end}"));
        Assert.Contains(WebSocketCloseStatus.NormalClosure, server.WsEnds.Cast<WebSocketCloseStatus?>());
    }

    private static Task WaitForEveryEndAsync(TestServer server) => UntilAsync(() => server.WsEnds.Count == server.WsAccepted);

    private static async Task UntilAsync(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(Bound);
        while (!condition())
        {
            await Task.Delay(10, cts.Token);
        }
    }

    [Fact]
    public async Task ScanAsync_MaxNotAboveMin_ThrowsArgumentException()
    {
        var options = new IdleScanOptions(new Uri("ws://127.0.0.1:1/")) { MinSilence = TimeSpan.FromSeconds(5), MaxSilence = TimeSpan.FromSeconds(5) };

        await Assert.ThrowsAsync<ArgumentException>(() => IdleScanner.ScanAsync(options));
    }

    [Fact]
    public void Options_OutOfRangeValues_ThrowAtOnce()
    {
        var options = new IdleScanOptions(new Uri("wss://example.test/ws"));

        Assert.Throws<ArgumentOutOfRangeException>(() => options.Parallel = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Parallel = 33);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MinSilence = TimeSpan.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Resolution = TimeSpan.FromSeconds(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxRounds = 0);
        Assert.Throws<ArgumentException>(() => options.Uri = new Uri("ftp://example.test/"));
        Assert.Equal((TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(600), 4, 12), (options.MinSilence, options.MaxSilence, options.Parallel, options.MaxRounds));
    }

    [Fact]
    public void Geometric_FourSteps_SpansMinToMaxByOneFactor()
    {
        var steps = IdleScanner.Geometric(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8), 4);

        Assert.Equal([1, 2, 4, 8], steps.Select(s => s.TotalSeconds));
    }

    [Fact]
    public void Geometric_OneStep_IsTheMax()
    {
        Assert.Equal([TimeSpan.FromSeconds(8)], IdleScanner.Geometric(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8), 1));
    }

    [Fact]
    public void Between_ThreePoints_SplitTheRangeEvenlyAndExcludeItsEnds()
    {
        var points = IdleScanner.Between(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), 3);

        Assert.Equal([2.5, 3, 3.5], points.Select(p => p.TotalSeconds));
    }
}
