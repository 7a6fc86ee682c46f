using System.Net;
using System.Net.Sockets;
using System.Text;
using Lifeline.FaultProxy.Toxics;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.FaultProxy.Tests;

public sealed class FaultProxyTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly EchoServer _server = new();
    private TcpFaultProxy _proxy = null!;

    public Task InitializeAsync()
    {
        _proxy = new TcpFaultProxy("127.0.0.1", _server.Port).Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _server.DisposeAsync();
    }

    private Task<Socket> ConnectAsync() => ConnectAsync(_proxy);

    private static async Task<Socket> ConnectAsync(TcpFaultProxy proxy)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(proxy.EndPoint);
        await WaitUntilAsync(() => proxy.Links.Count > 0);
        return socket;
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes (fewer if the stream ends first) as text.</summary>
    private static async Task<string> ReceiveAsync(Socket socket, int count, TimeSpan? timeout = null)
    {
        var received = new byte[count];
        var total = 0;
        using var cts = new CancellationTokenSource(timeout ?? Bound);
        while (total < count)
        {
            var read = await socket.ReceiveAsync(received.AsMemory(total), SocketFlags.None, cts.Token);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return Encoding.UTF8.GetString(received, 0, total);
    }

    private static async Task<string> RoundTripAsync(Socket socket, string text, TimeSpan? timeout = null)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        await socket.SendAsync(bytes, SocketFlags.None);
        return await ReceiveAsync(socket, bytes.Length, timeout);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(Bound);
        while (!condition())
        {
            await Task.Delay(10, cts.Token);
        }
    }

    [Fact]
    public async Task Link_WithoutFaults_ForwardsBothWays()
    {
        using var socket = await ConnectAsync();

        Assert.Equal("hello", await RoundTripAsync(socket, "hello"));
        var link = Assert.Single(_proxy.Links);
        // A pump counts its bytes after its write returns, which can be after the echo reached the client.
        await WaitUntilAsync(() => link.BytesUpstream == 5 && link.BytesDownstream == 5);
    }

    [Fact]
    public async Task AcceptFails_ForAWhile_TheProxyGoesOnAcceptingAndSaysSoOnce()
    {
        // Before, one failed accept (EMFILE when out of descriptors) ended the accept loop for good while the port
        // stayed open: later connections waited in the backlog and nothing was forwarded again.
        var failures = new List<SocketError>();
        _proxy.AcceptFailed += e =>
        {
            lock (failures)
            {
                failures.Add(e.SocketErrorCode);
            }
        };
        var failing = 3;
        _proxy.BeforeAcceptForTest = () =>
        {
            if (Interlocked.Decrement(ref failing) >= 0)
            {
                throw new SocketException((int)SocketError.TooManyOpenSockets);
            }
        };

        // The loop already waits in an accept that passed the hook: this connection takes it, the next accepts fail.
        using var first = await ConnectAsync();
        Assert.Equal("one", await RoundTripAsync(first, "one"));
        await WaitUntilAsync(() => Volatile.Read(ref failing) < 0);

        using var second = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await second.ConnectAsync(_proxy.EndPoint);

        Assert.Equal("two", await RoundTripAsync(second, "two"));
        lock (failures)
        {
            Assert.Equal([SocketError.TooManyOpenSockets], failures); // once for the run of three failures
        }

        Assert.Equal(2, _proxy.AcceptedCount);
    }

    [Fact]
    public async Task ResetAll_ClientSeesConnectionReset_ServerToo()
    {
        using var socket = await ConnectAsync();
        await RoundTripAsync(socket, "x");

        _proxy.ResetAll();

        var error = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            using var cts = new CancellationTokenSource(Bound);
            var read = await socket.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token);
            Assert.Fail($"expected a reset, read {read} bytes");
        });
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        Assert.Equal(SocketError.ConnectionReset, await _server.PeerFailed.Task.WaitAsync(Bound));
        await WaitUntilAsync(() => _proxy.Links.Count == 0);
    }

    [Fact]
    public async Task CloseAllWithFin_ClientReadsEndOfStream()
    {
        using var socket = await ConnectAsync();

        _proxy.CloseAllWithFin();

        using var cts = new CancellationTokenSource(Bound);
        Assert.Equal(0, await socket.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token));
        await _server.PeerClosed.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task BlackHole_BytesSentMeanwhile_AreDeliveredInOrderWhenItEnds()
    {
        using var socket = await ConnectAsync();
        Assert.Equal("before", await RoundTripAsync(socket, "before"));
        var hole = new BlackHoleToxic();
        _proxy.AddToxic(hole);

        await socket.SendAsync("one-"u8.ToArray(), SocketFlags.None);
        await socket.SendAsync("two-"u8.ToArray(), SocketFlags.None);
        await socket.SendAsync("three"u8.ToArray(), SocketFlags.None);
        const string expected = "one-two-three";
        var received = new byte[expected.Length];
        var receive = socket.ReceiveAsync(received, SocketFlags.None);
        await Task.Delay(300); // nothing may arrive: there is no event to wait on for absence
        Assert.False(receive.IsCompleted);
        Assert.Single(_server.ReadSizes); // only "before" reached the server

        Assert.True(_proxy.RemoveToxic(hole));

        // The echo of exactly the held bytes comes back, in order and with no hole, then the link carries on.
        var total = await receive.WaitAsync(Bound);
        using var cts = new CancellationTokenSource(Bound);
        while (total < expected.Length)
        {
            var read = await socket.ReceiveAsync(received.AsMemory(total), SocketFlags.None, cts.Token);
            Assert.NotEqual(0, read);
            total += read;
        }

        Assert.Equal(expected, Encoding.UTF8.GetString(received));
        Assert.Equal("after", await RoundTripAsync(socket, "after"));
    }

    [Fact]
    public async Task BlackHole_ClientClosesMeanwhile_TheFinWaitsUntilItEnds()
    {
        // Before, a pump idle in its read passed the FIN on at once: over a "dead path" the server saw a clean close.
        using var socket = await ConnectAsync();
        Assert.Equal("before", await RoundTripAsync(socket, "before"));
        var hole = new BlackHoleToxic();
        _proxy.AddToxic(hole);

        socket.Shutdown(SocketShutdown.Send);
        await Task.Delay(300); // nothing may arrive: there is no event to wait on for absence
        Assert.False(_server.PeerClosed.Task.IsCompleted, "the FIN crossed the black hole");

        Assert.True(_proxy.RemoveToxic(hole));
        await _server.PeerClosed.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task BlackHole_ClientResetsMeanwhile_TheResetWaitsUntilItEnds()
    {
        using var socket = await ConnectAsync();
        Assert.Equal("before", await RoundTripAsync(socket, "before"));
        var hole = new BlackHoleToxic();
        _proxy.AddToxic(hole);

        socket.LingerState = new LingerOption(true, 0);
        socket.Close(); // RST
        await Task.Delay(300); // nothing may arrive: there is no event to wait on for absence
        Assert.False(_server.PeerFailed.Task.IsCompleted, "the reset crossed the black hole");

        Assert.True(_proxy.RemoveToxic(hole));
        Assert.Equal(SocketError.ConnectionReset, await _server.PeerFailed.Task.WaitAsync(Bound));
    }

    [Fact]
    public async Task BlackHole_LinkResetMeanwhile_HeldBytesAreNeverDelivered()
    {
        using var socket = await ConnectAsync();
        var hole = new BlackHoleToxic();
        _proxy.AddToxic(hole, Direction.Upstream);
        await socket.SendAsync("held"u8.ToArray(), SocketFlags.None);
        var link = Assert.Single(_proxy.Links);

        link.Reset();
        _proxy.RemoveToxic(hole);

        Assert.Equal(SocketError.ConnectionReset, await _server.PeerFailed.Task.WaitAsync(Bound));
        Assert.Empty(_server.ReadSizes);
    }

    [Fact]
    public async Task BlackHole_AddedWhileBandwidthPacesAChunk_HoldsTheRestOfIt()
    {
        // Bandwidth writes a chunk piece by piece, after the proxy checked for a black hole; before, the pieces went on
        // crossing the hole. 4,000 B/s: 400-byte pieces, the 16 KiB crosses in about 4 s without a hole.
        using var socket = await ConnectAsync();
        _proxy.AddToxic(new BandwidthToxic(4_000), Direction.Upstream);
        var link = Assert.Single(_proxy.Links);
        const int size = 16 * 1024;
        await socket.SendAsync(new byte[size], SocketFlags.None);

        await WaitUntilAsync(() => link.BytesUpstream > 0);
        var hole = new BlackHoleToxic();
        _proxy.AddToxic(hole, Direction.Upstream);
        var atHole = link.BytesUpstream;
        await Task.Delay(2000); // nothing may cross: there is no event to wait on for absence
        // One piece may have been on its way as the hole went in; without the hold 8,000 bytes would have crossed.
        Assert.InRange(link.BytesUpstream, atHole, atHole + 400);
        var held = link.BytesUpstream;
        Assert.True(held < size, "the whole chunk crossed before the hole went in");

        Assert.True(_proxy.RemoveToxic(hole));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (_server.ReadSizes.Sum() < size)
        {
            await Task.Delay(10, cts.Token);
        }

        Assert.Equal(size, link.BytesUpstream);
    }

    [Fact]
    public async Task Drop_DiscardsBytes_UntilRemoved()
    {
        using var socket = await ConnectAsync();
        var drop = new DropToxic();
        _proxy.AddToxic(drop);

        await socket.SendAsync("lost"u8.ToArray(), SocketFlags.None);
        var receive = socket.ReceiveAsync(new byte[16], SocketFlags.None);

        // The toxic applies to bytes the proxy processes while it is in place: wait until it took them (on a loaded
        // machine the pump may get to them late), then check nothing went on.
        await WaitUntilAsync(() => drop.DroppedBytes == 4);
        await Task.Delay(100); // absence has no event to wait on
        Assert.False(receive.IsCompleted);
        Assert.Empty(_server.ReadSizes);

        Assert.True(_proxy.RemoveToxic(drop));
        await socket.SendAsync("found"u8.ToArray(), SocketFlags.None);
        Assert.Equal(5, await receive.WaitAsync(Bound));
    }

    [Fact]
    public async Task Slicer_DeliversWritesInSmallPieces()
    {
        using var socket = await ConnectAsync();
        var recorder = new RecordingToxic();
        _proxy.AddToxic(new SlicerToxic(3), Direction.Upstream);
        _proxy.AddToxic(recorder, Direction.Upstream);

        var text = new string('a', 30);
        Assert.Equal(text, await RoundTripAsync(socket, text));
        Assert.Equal(30, recorder.Sizes.Sum());
        Assert.All(recorder.Sizes, size => Assert.True(size <= 3, $"a write of {size} bytes passed the slicer"));
        Assert.Equal(10, recorder.Sizes.Count);
    }

    [Fact]
    public async Task LinkOpenedHandlerThrows_TheLinkStillForwards()
    {
        // Before, the exception escaped before the link was started: it sat in Links and forwarded nothing.
        _proxy.LinkOpened += _ => throw new InvalidOperationException("a handler's bug");

        using var socket = await ConnectAsync();

        Assert.Equal("through", await RoundTripAsync(socket, "through"));
    }

    [Fact]
    public async Task LinkEndedHandlerThrows_TheIdleCutGoesOnCuttingAndDisposeDoesNotThrow()
    {
        // Before, the exception ended the idle monitor (no link was cut after the first) and DisposeAsync rethrew it.
        var ended = 0;
        _proxy.LinkEnded += _ =>
        {
            Interlocked.Increment(ref ended);
            throw new InvalidOperationException("a handler's bug");
        };
        _proxy.SetIdleCut(TimeSpan.FromMilliseconds(300), IdleCutKind.Reset);

        using var first = await ConnectAsync();
        await WaitUntilAsync(() => Volatile.Read(ref ended) == 1);
        using var second = await ConnectAsync();
        await WaitUntilAsync(() => Volatile.Read(ref ended) == 2);

        await _proxy.DisposeAsync();
    }

    [Fact]
    public async Task Latency_DelaysDelivery()
    {
        using var socket = await ConnectAsync();
        _proxy.AddToxic(new LatencyToxic(TimeSpan.FromMilliseconds(200)), Direction.Downstream);

        var started = TimeProvider.System.GetTimestamp();
        Assert.Equal("ping", await RoundTripAsync(socket, "ping"));
        Assert.True(TimeProvider.System.GetElapsedTime(started) >= TimeSpan.FromMilliseconds(190));
    }

    [Fact]
    public async Task Latency_TheProxyReadsOnWhileAChunkWaits_SoChunksSentApartArriveAfterOneDelay()
    {
        // Before, a direction read its next chunk only once the last had waited out its delay: a steady stream got one
        // read (16 KiB) through per delay, and "b" here never came in while "a" waited.
        await using var delayed = await OneSecondLatencyOnAFakeClockAsync(Direction.Downstream);
        var (time, socket, link) = (delayed.Time, delayed.Socket, delayed.Link);

        await socket.SendAsync("a"u8.ToArray(), SocketFlags.None);
        await WaitUntilAsync(() => link.DelayLineFor(Direction.Downstream)?.WaitingBytes == 1);
        await socket.SendAsync("b"u8.ToArray(), SocketFlags.None);
        await WaitUntilAsync(() => link.DelayLineFor(Direction.Downstream)?.WaitingBytes == 2);
        await WaitUntilAsync(() => link.DelayLineFor(Direction.Downstream)?.TimersArmed == 1);
        Assert.Equal(0, link.BytesDownstream);
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal("ab", await ReceiveAsync(socket, 2));
    }

    [Fact]
    public async Task Latency_AFinFollowsTheBytesOnTheirWay()
    {
        await using var delayed = await OneSecondLatencyOnAFakeClockAsync(Direction.Upstream);
        var (time, socket, link) = (delayed.Time, delayed.Socket, delayed.Link);

        await socket.SendAsync("xyz"u8.ToArray(), SocketFlags.None);
        await WaitUntilAsync(() => link.DelayLineFor(Direction.Upstream)?.WaitingBytes == 3);
        socket.Shutdown(SocketShutdown.Send);
        await WaitUntilAsync(() => link.DelayLineFor(Direction.Upstream)?.Waiting == 2); // the bytes, then the FIN
        await WaitUntilAsync(() => link.DelayLineFor(Direction.Upstream)?.TimersArmed == 1);
        Assert.False(_server.PeerClosed.Task.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        await _server.PeerClosed.Task.WaitAsync(Bound);
        Assert.Equal(3, _server.ReadSizes.Sum()); // every byte, then the FIN
        Assert.Equal("xyz", await ReceiveAsync(socket, 3)); // the echo comes back through the other direction
    }

    [Fact]
    public async Task Latency_LinkResetWhileChunksWait_ThePumpsEndAndTheLinkIsGone()
    {
        await using var delayed = await OneSecondLatencyOnAFakeClockAsync(Direction.Upstream);
        var (socket, link) = (delayed.Socket, delayed.Link);
        await socket.SendAsync("xyz"u8.ToArray(), SocketFlags.None);
        await WaitUntilAsync(() => link.DelayLineFor(Direction.Upstream)?.WaitingBytes == 3);

        link.Reset();

        await link.Completion.WaitAsync(Bound);
        Assert.Equal(0, link.DelayLineFor(Direction.Upstream)!.WaitingBytes); // dropped, their buffers returned
        Assert.Equal(0, link.BytesUpstream);
        await WaitUntilAsync(() => delayed.Proxy.Links.Count == 0);
    }

    [Fact]
    public async Task Bandwidth_PacesLargeWrites()
    {
        using var socket = await ConnectAsync();
        _proxy.AddToxic(new BandwidthToxic(10_000), Direction.Downstream);

        var started = TimeProvider.System.GetTimestamp();
        var text = new string('b', 3_000);
        Assert.Equal(text, await RoundTripAsync(socket, text));
        // 3,000 bytes at 10,000 B/s need about 0.3 s.
        Assert.True(TimeProvider.System.GetElapsedTime(started) >= TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public async Task Bandwidth_SmallPiecesThroughALink_ArePacedTogether()
    {
        // Sliced to 10 bytes, at 50,000 B/s each piece costs 0.2 ms: a whole-millisecond timer waited that as nothing,
        // so before, the limit let the pieces through as fast as the proxy wrote them. On the link's schedule, 20,000
        // bytes need 0.4 s.
        using var socket = await ConnectAsync();
        _proxy.AddToxic(new SlicerToxic(10), Direction.Downstream);
        _proxy.AddToxic(new BandwidthToxic(50_000), Direction.Downstream);
        var text = new string('s', 20_000);

        var started = TimeProvider.System.GetTimestamp();
        Assert.Equal(text, await RoundTripAsync(socket, text, TimeSpan.FromSeconds(60)));

        // The schedule may run a millisecond ahead, no more.
        var elapsed = TimeProvider.System.GetElapsedTime(started);
        Assert.True(elapsed >= TimeSpan.FromSeconds(0.39), $"{elapsed}");
    }

    [Fact]
    public async Task Bandwidth_SmallPiecesOfOneFlow_ArePacedTogether()
    {
        // 10-byte pieces at 100,000 B/s cost 0.1 ms each: waited one by one they waited nothing. On the flow's schedule
        // they leave 10 per millisecond. Fake clock: the first 1 ms of the schedule leaves at once, the rest waits.
        var time = new FakeTimeProvider();
        var toxic = new BandwidthToxic(100_000, time);
        var forwarded = 0;
        LinkFlow.Enter();
        ValueTask Count(ReadOnlyMemory<byte> piece, CancellationToken _)
        {
            Interlocked.Add(ref forwarded, piece.Length);
            return ValueTask.CompletedTask;
        }

        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                await toxic.ProcessAsync(new byte[10], Count, CancellationToken.None);
            }
        });
        await WaitUntilAsync(() => Volatile.Read(ref forwarded) >= 90);
        await Task.Delay(100); // what may not leave yet has had its chance to
        Assert.InRange(Volatile.Read(ref forwarded), 90, 100);

        // The clock moves a millisecond at a time until all went out (bounded: an advance that came before a wait was
        // armed, on a loaded machine, only costs another step).
        using (var bound = new CancellationTokenSource(Bound))
        {
            while (!sending.IsCompleted)
            {
                time.Advance(TimeSpan.FromMilliseconds(1));
                await Task.Delay(10, bound.Token);
            }
        }

        await sending;
        Assert.Equal(500, forwarded);
        Assert.True(time.GetUtcNow() - time.Start >= TimeSpan.FromMilliseconds(4), "the 50 pieces cost 5 ms of schedule, less the first 1 ms of slack");
    }

    [Theory]
    [InlineData(IdleCutKind.Reset)]
    [InlineData(IdleCutKind.Fin)]
    public async Task IdleCut_LinkIdleLongerThanLimit_IsCutTheChosenWay(IdleCutKind kind)
    {
        using var socket = await ConnectAsync();
        _proxy.SetIdleCut(TimeSpan.FromMilliseconds(300), kind);

        using var cts = new CancellationTokenSource(Bound);
        if (kind == IdleCutKind.Reset)
        {
            var error = await Assert.ThrowsAsync<SocketException>(async () => await socket.ReceiveAsync(new byte[4], SocketFlags.None, cts.Token));
            Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        }
        else
        {
            Assert.Equal(0, await socket.ReceiveAsync(new byte[4], SocketFlags.None, cts.Token));
        }
    }

    [Theory]
    [InlineData(IdleCutKind.Fin)]
    [InlineData(IdleCutKind.Reset)]
    public async Task Dispose_WhileTheIdleCutEndsLinks_DoesNotThrow(IdleCutKind kind)
    {
        // The idle monitor may be ending a link (it won the link's end and is about to stop its pumps) while the proxy's
        // dispose, which lost that race, has already waited for the pumps and disposed the link's stop source. That threw
        // ObjectDisposedException out of the proxy's dispose (seen once in a CI run, from the idle-scan test). A race, so
        // this runs it many times with links idle from the start and the monitor checking every millisecond.
        for (var round = 0; round < 100; round++)
        {
            var proxy = new TcpFaultProxy(new FaultProxyOptions { UpstreamHost = "127.0.0.1", UpstreamPort = _server.Port, IdleCheckInterval = TimeSpan.FromMilliseconds(1) }).Start();
            var sockets = new List<Socket>();
            try
            {
                for (var i = 0; i < 8; i++)
                {
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    sockets.Add(socket);
                    await socket.ConnectAsync(proxy.EndPoint);
                }

                proxy.SetIdleCut(TimeSpan.FromMilliseconds(1 + (round % 3)), kind);
                await Task.Delay(round % 4);
            }
            finally
            {
                await proxy.DisposeAsync().AsTask().WaitAsync(Bound);
                foreach (var socket in sockets)
                {
                    socket.Dispose();
                }
            }
        }
    }

    [Fact]
    public async Task IdleCut_Silent_LeavesLinkOpenButDead()
    {
        using var socket = await ConnectAsync();
        _proxy.SetIdleCut(TimeSpan.FromMilliseconds(200), IdleCutKind.Silent);
        var link = Assert.Single(_proxy.Links);
        await WaitUntilAsync(() => link.IsSilenced);

        await socket.SendAsync("x"u8.ToArray(), SocketFlags.None);
        var receive = socket.ReceiveAsync(new byte[4], SocketFlags.None);
        await Task.Delay(300);
        Assert.False(receive.IsCompleted);
        Assert.Empty(_server.ReadSizes);
        Assert.False(link.IsClosed);
    }

    [Fact]
    public async Task IdleCut_ResetOnNextPacket_NothingUntilOneSideSends_ThenBothAreReset()
    {
        using var socket = await ConnectAsync();
        _proxy.SetIdleCut(TimeSpan.FromMilliseconds(200), IdleCutKind.ResetOnNextPacket);
        var link = Assert.Single(_proxy.Links);
        await WaitUntilAsync(() => link.IsForgotten);

        // Forgotten, not cut: the client hears nothing while it stays quiet.
        var receive = socket.ReceiveAsync(new byte[4], SocketFlags.None);
        await Task.WhenAny(receive, Task.Delay(TimeSpan.FromMilliseconds(300)));
        Assert.False(receive.IsCompleted, "the forgotten link was cut before anyone sent");

        await socket.SendAsync("x"u8.ToArray(), SocketFlags.None);
        var error = await Assert.ThrowsAsync<SocketException>(async () => await receive.WaitAsync(Bound));
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        Assert.Empty(_server.ReadSizes); // the packet that met the forgotten flow never reached the server
        await WaitUntilAsync(() => link.IsClosed);
    }

    [Fact]
    public async Task Silence_UpstreamResetsAfterwards_ClientSideStaysOpen()
    {
        // A silenced link is a black hole: a reset from the server must not cross it either, or a client's dead-link
        // detection would be measured against the server's instead of its own.
        using var socket = await ConnectAsync();
        Assert.Equal("a", await RoundTripAsync(socket, "a"));
        var link = Assert.Single(_proxy.Links);
        _proxy.SilenceAll();

        _server.ResetAll();
        var receive = socket.ReceiveAsync(new byte[4], SocketFlags.None);

        // Nothing may arrive; a second is plenty for a reset to cross loopback (a loaded machine can only make this pass late, not fail).
        await Task.WhenAny(receive, Task.Delay(TimeSpan.FromSeconds(1)));
        Assert.False(receive.IsCompleted, "the client side saw the server's reset through a silenced link");
        Assert.False(link.IsClosed);
    }

    [Fact]
    public async Task IdleCut_BusyLink_IsNotCut()
    {
        using var socket = await ConnectAsync();
        // Traffic every 200 ms for 3 s keeps a link with a 1.5 s idle cut alive; without the resets it would be cut.
        // The margin (1.3 s) tolerates a busy machine.
        _proxy.SetIdleCut(TimeSpan.FromMilliseconds(1500), IdleCutKind.Reset);

        for (var i = 0; i < 15; i++)
        {
            Assert.Equal("k", await RoundTripAsync(socket, "k"));
            await Task.Delay(200);
        }

        Assert.Single(_proxy.Links);
    }

    [Fact]
    public async Task RefuseConnections_NewConnectsRefused_UntilAcceptedAgain()
    {
        _proxy.RefuseConnections();
        Assert.True(_proxy.IsRefusingConnections);

        using (var refused = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            var error = await Assert.ThrowsAsync<SocketException>(async () => await refused.ConnectAsync(_proxy.EndPoint));
            Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
        }

        _proxy.AcceptConnections();
        using var socket = await ConnectAsync();
        Assert.Equal("back", await RoundTripAsync(socket, "back"));
    }

    [Fact]
    public async Task RefuseConnections_ForAPeriod_ListensAgainByItself()
    {
        _proxy.RefuseConnections(TimeSpan.FromMilliseconds(300));
        await WaitUntilAsync(() => !_proxy.IsRefusingConnections);

        using var socket = await ConnectAsync();
        Assert.Equal("ok", await RoundTripAsync(socket, "ok"));
    }

    /// <summary>A second proxy in front of the same echo server, on the given clock.</summary>
    /// <summary>A proxy on a fake clock with a latency of one second one way, and one client connected through it.</summary>
    private async Task<DelayedLink> OneSecondLatencyOnAFakeClockAsync(Direction direction)
    {
        var time = new FakeTimeProvider();
        var proxy = ProxyOnClock(time);
        proxy.AddToxic(new LatencyToxic(TimeSpan.FromSeconds(1), timeProvider: time), direction);
        var socket = await ConnectAsync(proxy);
        return new DelayedLink(time, proxy, socket, Assert.Single(proxy.Links));
    }

    private sealed record DelayedLink(FakeTimeProvider Time, TcpFaultProxy Proxy, Socket Socket, ProxyLink Link) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Socket.Dispose();
            await Proxy.DisposeAsync();
        }
    }

    private TcpFaultProxy ProxyOnClock(TimeProvider time) =>
        new TcpFaultProxy(new FaultProxyOptions { UpstreamHost = "127.0.0.1", UpstreamPort = _server.Port, TimeProvider = time }).Start();

    /// <summary>Another socket listening on the port a refusing proxy let go.</summary>
    private static Socket Squat(IPEndPoint endPoint)
    {
        var squatter = new Socket(SocketType.Stream, ProtocolType.Tcp);
        squatter.Bind(endPoint);
        squatter.Listen();
        return squatter;
    }

    [Fact]
    public async Task RefuseConnections_PortTakenDuringThePeriod_GoesOnRefusingAndListensOnceItIsFree()
    {
        var time = new FakeTimeProvider();
        await using var proxy = ProxyOnClock(time);
        proxy.RefuseConnections(TimeSpan.FromSeconds(1));
        using (Squat(proxy.EndPoint))
        {
            // The period's end finds the port taken. From a real timer an exception here would end the process.
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.True(proxy.IsRefusingConnections);
        }

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(proxy.IsRefusingConnections);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(proxy.EndPoint);
        Assert.Equal("back", await RoundTripAsync(socket, "back"));
    }

    [Fact]
    public async Task AcceptConnections_PortTaken_ThrowsAndTheTimedRefusalGoesOnTrying()
    {
        var time = new FakeTimeProvider();
        await using var proxy = ProxyOnClock(time);
        proxy.RefuseConnections(TimeSpan.FromSeconds(1));
        using (Squat(proxy.EndPoint))
        {
            Assert.Throws<SocketException>(proxy.AcceptConnections);
            Assert.True(proxy.IsRefusingConnections);
        }

        time.Advance(TimeSpan.FromSeconds(1)); // the period's end, with the port free again
        Assert.False(proxy.IsRefusingConnections);
    }

    [Fact]
    public async Task RefuseConnections_ReplacedWhileItsTimerIsFiring_TheOldPeriodDoesNotEndTheNewRefusal()
    {
        var time = new RecordingTimeProvider();
        await using var proxy = ProxyOnClock(time);
        var before = time.Timers.Count;
        proxy.RefuseConnections(TimeSpan.FromSeconds(1));
        var (callback, state) = Assert.Single(time.Timers.Skip(before));

        proxy.RefuseConnections(); // until told otherwise
        callback(state); // the first period's callback, already on its way when the timer was disposed

        Assert.True(proxy.IsRefusingConnections);
    }

    /// <summary>Records every timer's callback and never fires one, so a test can run a callback at the worst moment.</summary>
    private sealed class RecordingTimeProvider : TimeProvider
    {
        public List<(TimerCallback Callback, object? State)> Timers { get; } = [];

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            lock (Timers)
            {
                Timers.Add((callback, state));
            }

            return new IdleTimer();
        }

        private sealed class IdleTimer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task PerLinkToxic_AffectsOnlyThatLink()
    {
        using var first = await ConnectAsync();
        var firstLink = Assert.Single(_proxy.Links);
        using var second = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await second.ConnectAsync(_proxy.EndPoint);
        await WaitUntilAsync(() => _proxy.Links.Count == 2);

        firstLink.AddToxic(new BlackHoleToxic());

        Assert.Equal("two", await RoundTripAsync(second, "two"));
        var receive = first.ReceiveAsync(new byte[4], SocketFlags.None);
        await first.SendAsync("one"u8.ToArray(), SocketFlags.None);
        await Task.Delay(200);
        Assert.False(receive.IsCompleted);
    }

    [Fact]
    public async Task UpstreamDown_ClientIsReset()
    {
        const int deadPort = 1; // tcpmux: served nowhere
        await using var proxy = new TcpFaultProxy("127.0.0.1", deadPort).Start();

        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(Bound);
        await Assert.ThrowsAsync<SocketException>(async () =>
        {
            await socket.ConnectAsync(proxy.EndPoint, cts.Token);
            // A reset arrives as an exception; a 0-byte read would mean a FIN instead.
            var read = await socket.ReceiveAsync(new byte[4], SocketFlags.None, cts.Token);
            throw new SocketException((int)(read == 0 ? SocketError.Disconnecting : SocketError.Success));
        });
    }

    [Theory]
    [InlineData("", 80)]
    [InlineData("127.0.0.1", 0)]
    [InlineData("127.0.0.1", 70000)]
    public void Constructor_BadUpstream_ThrowsNamingTheOption(string host, int port)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => new TcpFaultProxy(host, port));
        Assert.Contains("Upstream", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Toxics_BadValues_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LatencyToxic(TimeSpan.FromMilliseconds(-1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LatencyToxic(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(20)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BandwidthToxic(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SlicerToxic(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => _proxy.SetIdleCut(TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => _proxy.RefuseConnections(TimeSpan.FromSeconds(-1)));
        Assert.Contains("49 days", Assert.Throws<ArgumentOutOfRangeException>(() => _proxy.RefuseConnections(TimeSpan.FromDays(50))).Message, StringComparison.Ordinal);
        Assert.Contains("49 days", Assert.Throws<ArgumentOutOfRangeException>(() => new FaultProxyOptions { ConnectTimeout = TimeSpan.FromDays(50) }).Message, StringComparison.Ordinal);
        Assert.Contains("49 days", Assert.Throws<ArgumentOutOfRangeException>(() => new FaultProxyOptions { IdleCheckInterval = TimeSpan.FromDays(50) }).Message, StringComparison.Ordinal);
    }
}

/// <summary>Records the size of every chunk that reaches it, then passes it on.</summary>
internal sealed class RecordingToxic : IToxic
{
    public System.Collections.Concurrent.ConcurrentQueue<int> Sizes { get; } = new();

    public string Name => "recorder";

    public ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> forward, CancellationToken cancellationToken)
    {
        Sizes.Enqueue(chunk.Length);
        return forward(chunk, cancellationToken);
    }
}
