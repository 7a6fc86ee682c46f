using System.Net.Sockets;
using System.Text;
using Lifeline.AspNetCore;
using Lifeline.CloseCodes;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Lifeline.IntegrationTests.Server;

public sealed class BadInputTests
{
    [Fact]
    public async Task HandlerThrows_Closes1011_OtherConnectionsUnaffected()
    {
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, ct) =>
        {
            await foreach (var message in connection.Messages.ReadAllAsync())
            {
                if (message.Text == "boom")
                {
                    throw new InvalidOperationException("handler bug");
                }

                await connection.SendAsync(message.Data, message.Type, ct);
            }
        });
        await using var victim = await PlainClient.ConnectAsync(host.Uri());
        await using var bystander = await PlainClient.ConnectAsync(host.Uri());

        await victim.SendTextAsync("boom");

        Assert.Equal(1011, (await victim.Closed.WaitAsync(TimeSpan.FromSeconds(15))).Code);
        await bystander.SendTextAsync("fine");
        await Wait.UntilAsync(() => bystander.Messages.Contains("fine"));
    }

    [Theory]
    [InlineData(1006)]
    [InlineData(1005)]
    [InlineData(1015)]
    [InlineData(1004)]
    [InlineData(2500)]
    [InlineData(999)]
    public async Task HandlerCloseWithReservedCode_IsRefusedWithAClearException(int code)
    {
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, ct) =>
        {
            try
            {
                await connection.CloseAsync(new CloseCode(code), "nope", ct);
            }
            catch (ArgumentException e)
            {
                await connection.SendTextAsync(e.Message, ct);
                await connection.CloseAsync(CloseCode.NormalClosure, null, ct);
            }
        });
        await using var client = await PlainClient.ConnectAsync(host.Uri());

        var close = await client.Closed.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(1000, close.Code);
        Assert.Contains("may not be sent", Assert.Single(client.Messages), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HandlerCloseWithOversizedReason_IsTruncatedOnACharacterBoundary()
    {
        await using var host = await LifelineTestHost.StartAsync(handler: (connection, ct) =>
            connection.CloseAsync(CloseCode.NormalClosure, new string('é', 100), ct));
        await using var client = await PlainClient.ConnectAsync(host.Uri());

        var close = await client.Closed.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(1000, close.Code);
        Assert.Equal(new string('é', 61), close.Reason);
        Assert.True(Encoding.UTF8.GetByteCount(close.Reason!) <= 123);
    }

    [Fact]
    public async Task OversizedMessage_Closes1009()
    {
        await using var host = await LifelineTestHost.StartAsync(o => o.MaxMessageSize = 1024);
        await using var client = await PlainClient.ConnectAsync(host.Uri());

        await client.SendTextAsync(new string('x', 5000));

        Assert.Equal(1009, (await client.Closed.WaitAsync(TimeSpan.FromSeconds(15))).Code);
    }

    [Fact]
    public async Task MaxMessageSizeIntMaxValue_MessagesAreEchoed()
    {
        // int.MaxValue reads as "no limit". Before, the read size (limit + 1 - bytes read) overflowed to a negative number
        // on the first message: the receive loop threw and the connection ended with 1000, the message undelivered.
        await using var host = await LifelineTestHost.StartAsync(o => o.MaxMessageSize = int.MaxValue);
        await using var client = await PlainClient.ConnectAsync(host.Uri());

        await client.SendTextAsync("first");
        await client.SendTextAsync(new string('x', 50_000)); // several reads, one buffer growth; within the test client's 64 KiB buffer

        await Wait.UntilAsync(() => client.Messages.Count == 2, TimeSpan.FromSeconds(15), "both echoes");
        Assert.Equal("first", client.Messages[0]);
        Assert.Equal(50_000, client.Messages[1].Length);
        Assert.False(client.Closed.IsCompleted);
    }

    [Fact]
    public async Task PlainHttpRequest_Gets400WithAnExplanation()
    {
        await using var host = await LifelineTestHost.StartAsync();
        using var http = new HttpClient();

        var response = await http.GetAsync($"http://127.0.0.1:{host.Port}/ws");

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Contains("accepts WebSocket connections only", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedUpgrade_MissingKey_Gets400_ServerKeepsServing()
    {
        await using var host = await LifelineTestHost.StartAsync();
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync("127.0.0.1", host.Port);
            var stream = tcp.GetStream();
            var request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
            var buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var read = await stream.ReadAsync(buffer, timeout.Token);
            var response = Encoding.ASCII.GetString(buffer, 0, read);
            Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        }

        await using var client = await PlainClient.ConnectAsync(host.Uri());
        await client.SendTextAsync("ok");
        await Wait.UntilAsync(() => client.Messages.Contains("ok"));
    }

    [Fact]
    public void Options_BadValues_ThrowNamingTheSetting()
    {
        var options = new Lifeline.AspNetCore.LifelineServerOptions();
        Assert.Contains("MaxConnections", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxConnections = 0).Message, StringComparison.Ordinal);
        Assert.Contains("DrainTimeout", Assert.Throws<ArgumentOutOfRangeException>(() => options.DrainTimeout = TimeSpan.Zero).Message, StringComparison.Ordinal);
        Assert.Contains("MaxMessageSize", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxMessageSize = -1).Message, StringComparison.Ordinal);
        options.RestartHintMin = TimeSpan.FromSeconds(9);
        Assert.Contains("RestartHintMin", Assert.Throws<ArgumentException>(options.Validate).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_DurationsLongerThanATimerWaits_ThrowNamingTheSettingAndTheLimit()
    {
        // Timers wait at most 2^32-2 ms (about 49.7 days). Before, a longer value was accepted and made the timer that
        // used it throw later, in the drain or a session's handshake, far from the setting.
        var server = new LifelineServerOptions();
        var sessions = new Lifeline.AspNetCore.LifelineSessionOptions();
        OptionAssert.RejectLongerThanATimer(
            ("DrainCloseBatchInterval", d => server.DrainCloseBatchInterval = d),
            ("DrainTimeout", d => server.DrainTimeout = d),
            ("KeepAliveTimeout", d => server.KeepAliveTimeout = d),
            ("IdleTimeout", d => server.IdleTimeout = d),
            ("SendTimeout", d => server.SendTimeout = d),
            ("HandshakeTimeout", d => sessions.HandshakeTimeout = d),
            ("StoreWriteTimeout", d => sessions.StoreWriteTimeout = d),
            ("ResumeWindow", d => sessions.ResumeWindow = d)); // 2^32-1 ms was taken, and the session's expiry timer then failed unseen: it never expired

        // The longest a timer waits is still taken, and so is an infinite keep-alive timeout.
        var longest = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
        server.DrainCloseBatchInterval = longest;
        sessions.HandshakeTimeout = longest;
        server.KeepAliveTimeout = Timeout.InfiniteTimeSpan;
        Assert.Equal(longest, server.DrainCloseBatchInterval);
        Assert.Equal(Timeout.InfiniteTimeSpan, server.KeepAliveTimeout);
    }

    [Fact]
    public async Task Options_DrainLongerThanShutdownTimeout_FailTheHostStart()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => LifelineTestHost.StartAsync(o => o.DrainTimeout = TimeSpan.FromSeconds(45)));
        Assert.Contains("ShutdownTimeout", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_InfiniteShutdownTimeout_TheHostStartsAndServes()
    {
        // Infinite is the host's "wait as long as the services take". Before, it read as -1 ms: every DrainTimeout was
        // "longer", and the host refused to start.
        await using var host = await LifelineTestHost.StartAsync(services: s => s.Configure<HostOptions>(o => o.ShutdownTimeout = Timeout.InfiniteTimeSpan));
        await using var client = await PlainClient.ConnectAsync(host.Uri());
        await client.SendTextAsync("up");
        await Wait.UntilAsync(() => client.Messages.Contains("up"), TimeSpan.FromSeconds(15), "the echo");
    }

    [Fact]
    public async Task Options_InconsistentAtStart_FailTheHostStart()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => LifelineTestHost.StartAsync(o =>
        {
            o.RestartHintMin = TimeSpan.FromSeconds(10);
            o.RestartHintMax = TimeSpan.FromSeconds(2);
        }));
        Assert.Contains("RestartHintMin", error.ToString(), StringComparison.Ordinal);
    }
}

public sealed class ConnectionRecordTests
{
    public static TheoryData<string, int, bool> ProtocolViolations
    {
        get
        {
            var data = new TheoryData<string, int, bool>();
            foreach (var appUsesWebSockets in new[] { false, true })
            {
                data.Add("invalid UTF-8 in a text message", 1007, appUsesWebSockets);
                data.Add("reserved close code 1004", 1002, appUsesWebSockets);
                data.Add("close code 999", 1002, appUsesWebSockets);
                data.Add("unknown opcode 3", 1002, appUsesWebSockets);
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(ProtocolViolations))]
    public async Task CloseCode_ClientViolatesTheProtocol_RecordsTheCodeTheServerSent(string violation, int expected, bool appUsesWebSockets)
    {
        // appUsesWebSockets: the application also calls app.UseWebSockets() for endpoints of its own (many do).
        var accepted = new TaskCompletionSource<LifelineConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(
            handler: (connection, ct) =>
            {
                accepted.TrySetResult(connection);
                return LifelineTestHost.EchoAsync(connection, ct);
            },
            map: appUsesWebSockets ? app => app.UseWebSockets() : (Action<WebApplication>?)null);
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);
        var connection = await accepted.Task.WaitAsync(TimeSpan.FromSeconds(15));

        switch (violation)
        {
            case "invalid UTF-8 in a text message":
                await client.SendFrameAsync(1, [0x68, 0x69, 0xC0, 0xAF, 0xFF]);
                break;
            case "reserved close code 1004":
                await client.SendFrameAsync(8, [0x03, 0xEC]);
                break;
            case "close code 999":
                await client.SendFrameAsync(8, [0x03, 0xE7]);
                break;
            default:
                await client.SendFrameAsync(3, [1, 2, 3]);
                break;
        }

        // The runtime's WebSocket aborts right after its Close frame, and the reset can overtake the frame on the
        // client's side (the kernel drops what it had not handed over). When the frame arrives it must carry the code;
        // either way the connection records the code it really wrote (read from the bytes it sent).
        int? onTheWire;
        try
        {
            onTheWire = await client.ReadCloseCodeAsync(TimeSpan.FromSeconds(15));
        }
        catch (IOException)
        {
            onTheWire = null;
        }

        Assert.True(onTheWire is null || onTheWire == expected, $"the Close frame carried {onTheWire}, not {expected}");
        await connection.Completion.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(expected, connection.ClosedWith?.Value);
    }

    [Fact]
    public async Task LeaveGroupDuringAJoinOfTheSameGroup_TheGroupTableAgreesWithTheConnection()
    {
        var accepted = new TaskCompletionSource<LifelineConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: async (connection, ct) =>
        {
            accepted.TrySetResult(connection);
            await foreach (var message in connection.Messages.ReadAllAsync())
            {
            }
        });
        await using var client = await PlainClient.ConnectAsync(host.Uri());
        var connection = await accepted.Task.WaitAsync(TimeSpan.FromSeconds(15));

        // A LeaveGroup from another thread runs while the join has made its own record but not yet the table entry. It
        // waits for the join now (given a second to finish, it does not).
        Task? leave = null;
        connection.JoinRecordedForTest = () =>
        {
            leave = Task.Run(() => connection.LeaveGroup("g"));
            leave.Wait(TimeSpan.FromSeconds(1));
        };
        connection.JoinGroup("g");
        connection.JoinRecordedForTest = null;
        await leave!.WaitAsync(TimeSpan.FromSeconds(15));

        // Before, the leave removed the record, found no entry yet, and the join then added one: the table kept the
        // connection in "g" while the connection said it was in no group, so no end ever removed it.
        Assert.Equal(connection.Groups.Contains("g"), host.Registry.GroupMembers("g").Contains(connection));
        Assert.Empty(connection.Groups);
    }

    [Fact]
    public async Task SendAsync_AfterTheConnectionEnded_ThrowsInvalidOperationException()
    {
        var accepted = new TaskCompletionSource<LifelineConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: (connection, ct) =>
        {
            accepted.TrySetResult(connection);
            return Task.CompletedTask; // returns at once: the connection is closed with 1000
        });
        await using var client = await PlainClient.ConnectAsync(host.Uri());
        var connection = await accepted.Task.WaitAsync(TimeSpan.FromSeconds(15));
        await connection.Completion.WaitAsync(TimeSpan.FromSeconds(15));

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await connection.SendTextAsync("late"));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await connection.SendAsync(new byte[3]));
        Assert.Throws<InvalidOperationException>(() => connection.JoinGroup("late"));
        Assert.True(connection.Closing.IsCancellationRequested);
        await connection.CloseAsync(CloseCode.NormalClosure); // closing an ended connection does nothing
        connection.LeaveGroup("late");
        connection.Abort();
        Assert.Equal(0, await host.Registry.SendToGroupAsync("late", "nobody"));
    }
}
