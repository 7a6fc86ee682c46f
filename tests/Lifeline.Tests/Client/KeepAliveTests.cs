using System.Collections.Concurrent;
using Lifeline.Client;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.Tests.Client;

public class KeepAliveTests
{
    private static readonly byte[] Frame = [0x82, 0x02, 0xAA, 0xBB]; // a binary frame, as ClientWebSocket writes one per write
    private static readonly byte[] CloseFrame = [0x88, 0x02, 0x03, 0xE8];

    /// <summary>Records every write; a write can be held open to see what happens meanwhile. Reads return what a test queues.</summary>
    private sealed class FakeConnection : DuplexTestStream
    {
        public ConcurrentQueue<byte[]> Written { get; } = new();

        public TaskCompletionSource? HoldNextWrite { get; set; }

        public ConcurrentQueue<byte[]> ToRead { get; } = new();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Written.Enqueue(buffer.ToArray());
            if (HoldNextWrite is { } hold)
            {
                HoldNextWrite = null;
                await hold.Task;
            }
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!ToRead.TryDequeue(out var data))
            {
                return new ValueTask<int>(0);
            }

            data.CopyTo(buffer);
            return new ValueTask<int>(data.Length);
        }

        public bool Disposed { get; private set; }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }

    private static bool IsPing(byte[] bytes) => bytes is [0x89, 0x80, _, _, _, _];

    [Fact]
    public async Task RequestPing_WhileNothingIsWritten_WritesAMaskedEmptyPing()
    {
        var connection = new FakeConnection();
        var link = new LinkStream(connection);

        link.RequestPing();

        await WaitUntilAsync(() => !connection.Written.IsEmpty);
        Assert.True(IsPing(Assert.Single(connection.Written)));
        Assert.False(link.PingPending);
    }

    [Fact]
    public async Task RequestPing_WhileAFrameIsBeingWritten_ThePingFollowsThatFrame()
    {
        var connection = new FakeConnection();
        var link = new LinkStream(connection);
        var hold = new TaskCompletionSource();
        connection.HoldNextWrite = hold;
        var write = link.WriteAsync(Frame).AsTask();

        link.RequestPing();
        Assert.Single(connection.Written); // nothing may go between the frame's bytes
        Assert.True(link.PingPending);

        hold.SetResult();
        await write;
        Assert.Equal(2, connection.Written.Count);
        Assert.Equal(Frame, connection.Written.First());
        Assert.True(IsPing(connection.Written.Last()));
        Assert.False(link.PingPending);
    }

    [Fact]
    public async Task RequestPing_WhileAPingIsStillBeingWritten_WritesNoSecondOneBesideIt()
    {
        var connection = new FakeConnection();
        var link = new LinkStream(connection);
        var hold = new TaskCompletionSource();
        connection.HoldNextWrite = hold;
        link.RequestPing(); // stuck in the connection's write (a full send buffer)

        link.RequestPing();
        Assert.Single(connection.Written);

        var frame = link.WriteAsync(Frame).AsTask(); // the socket's next frame waits for the ping, not beside it
        Assert.Single(connection.Written);
        hold.SetResult();
        await frame;
        await WaitUntilAsync(() => connection.Written.Count >= 2);
        Assert.True(IsPing(connection.Written.First()));
        Assert.Contains(Frame, connection.Written);
        Assert.True(connection.Written.Count(IsPing) <= 2);
    }

    [Fact]
    public async Task RequestPing_AfterACloseFrame_WritesNothing()
    {
        var connection = new FakeConnection();
        var link = new LinkStream(connection);
        await link.WriteAsync(CloseFrame);

        link.RequestPing();
        await link.WriteAsync(Frame); // not that a socket writes after its Close: the ping must not ride on it either

        Assert.DoesNotContain(connection.Written, IsPing);
    }

    [Fact]
    public async Task Reads_CountEveryReadStarted_WithoutWaitingForItsData()
    {
        // ClientWebSocket reads again after every frame it gets: a read started is the sign that data came in. A read
        // still waiting for data is counted without a wrapper around it (an idle connection holds no extra state).
        var connection = new FakeConnection();
        var link = new LinkStream(connection);
        connection.ToRead.Enqueue([1, 2, 3]);
        var buffer = new byte[16];

        Assert.Equal(3, await link.ReadAsync(buffer));
        Assert.Equal(0, await link.ReadAsync(buffer));

        Assert.Equal(2, link.Reads);
    }

    [Fact]
    public async Task Monitor_SilentForTheInterval_Pings_ThenExpiresAfterTheTimeout()
    {
        var time = new FakeTimeProvider();
        var connection = new FakeConnection();
        var link = new LinkStream(connection);
        var dead = 0;
        using var monitor = new KeepAliveMonitor(link, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(4), time, _ => Interlocked.Increment(ref dead), null);

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Empty(connection.Written);

        time.Advance(TimeSpan.FromSeconds(1));
        await WaitUntilAsync(() => !connection.Written.IsEmpty);
        Assert.True(IsPing(Assert.Single(connection.Written)));

        time.Advance(TimeSpan.FromSeconds(3));
        Assert.False(monitor.Expired);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(monitor.Expired);
        Assert.Equal(1, dead);

        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(1, dead); // once
    }

    [Fact]
    public async Task Monitor_DataArrivesAfterThePing_NotExpired_AndNoPingWhileDataFlows()
    {
        var time = new FakeTimeProvider();
        var connection = new FakeConnection();
        var link = new LinkStream(connection);
        var dead = 0;
        using var monitor = new KeepAliveMonitor(link, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(4), time, _ => Interlocked.Increment(ref dead), null);
        var buffer = new byte[16];

        time.Advance(TimeSpan.FromSeconds(10));
        await WaitUntilAsync(() => !connection.Written.IsEmpty);
        connection.ToRead.Enqueue([0x8A, 0x00]); // the Pong
        Assert.Equal(2, await link.ReadAsync(buffer));
        time.Advance(TimeSpan.FromSeconds(5));

        for (var second = 0; second < 60; second++)
        {
            connection.ToRead.Enqueue([0x82, 0x00]); // a message every second
            Assert.Equal(2, await link.ReadAsync(buffer));
            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.False(monitor.Expired);
        Assert.Equal(0, dead);
        Assert.Single(connection.Written, IsPing);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            await Task.Delay(10, bound.Token);
        }
    }

    [Fact]
    public void Invoker_TakesTheApplicationsClientCertificates_WithoutEmptyingItsCollection()
    {
        using var key = System.Security.Cryptography.RSA.Create(2048);
        using var certificate = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=client", key,
            System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        var applications = new System.Security.Cryptography.X509Certificates.X509CertificateCollection { certificate };
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.ClientCertificates = applications;

        var (invoker, _) = WebSocketInvoker.Create(socket.Options);
        invoker.Dispose();

        Assert.Single(applications); // reused by the next attempt's ConfigureWebSocket: it must still hold the certificate
        Assert.Empty(socket.Options.ClientCertificates);
    }

    [Fact]
    public void Invoker_LeavesEverySocketsOptionsTheSameEmptyCertificateCollection()
    {
        // An idle connection keeps its socket's options: a collection of its own there would cost 56 B per connection.
        using var first = new System.Net.WebSockets.ClientWebSocket();
        using var second = new System.Net.WebSockets.ClientWebSocket();

        WebSocketInvoker.Create(first.Options).Invoker.Dispose();
        WebSocketInvoker.Create(second.Options).Invoker.Dispose();

        Assert.Empty(first.Options.ClientCertificates);
        Assert.Same(first.Options.ClientCertificates, second.Options.ClientCertificates);
    }

    [Fact]
    public async Task UpgradedResponse_DisposedAfterAFailedConnect_ClosesTheConnectionsStream()
    {
        var connection = new FakeConnection();
        using var invoker = new HttpMessageInvoker(new UpgradeCapture(new UpgradingHandler(connection)));

        var response = await invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://127.0.0.1/ws"), CancellationToken.None);
        response.Dispose(); // what ClientWebSocket does when it refuses the upgrade's answer

        Assert.True(connection.Disposed);
    }

    /// <summary>Answers every request with 101 and the given stream as the upgraded connection.</summary>
    private sealed class UpgradingHandler(Stream connection) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.SwitchingProtocols) { Content = new StreamContent(connection) });
    }
}
