using System.Text;
using Lifeline.AspNetCore;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Server;

/// <summary>
/// Cases of the Autobahn|Testsuite (RFC 6455 sections 2-7) against a Lifeline echo endpoint, on a bare TCP client:
/// what Lifeline's receive loop adds (messages assembled from fragments, control frames between them, the close code
/// it records) must keep the runtime's conformance. docs/protocol.md, section 6, has the whole suite's results.
/// </summary>
public sealed class ServerConformanceTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task FragmentedText_PingBetweenFragments_PongFirstThenTheMessageWhole()
    {
        // Autobahn 5.6-5.8.
        await using var host = await LifelineTestHost.StartAsync();
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);

        await client.SendFrameAsync(0x1, Encoding.UTF8.GetBytes("frag1"), fin: false);
        await client.SendFrameAsync(0x9, Encoding.UTF8.GetBytes("ping payload"));
        await client.SendFrameAsync(0x0, Encoding.UTF8.GetBytes("frag2"), fin: false);
        await client.SendFrameAsync(0x0, Encoding.UTF8.GetBytes("frag3"));

        var pong = await client.ReadFrameAsync(Bound);
        Assert.Equal((0xA, true, "ping payload"), (pong!.Value.Opcode, pong.Value.Fin, Encoding.UTF8.GetString(pong.Value.Payload)));
        var echo = await client.ReadFrameAsync(Bound);
        Assert.Equal((0x1, true, "frag1frag2frag3"), (echo!.Value.Opcode, echo.Value.Fin, Encoding.UTF8.GetString(echo.Value.Payload)));
    }

    [Fact]
    public async Task Text_CodePointsSplitAcrossFragments_EchoedWhole()
    {
        // Autobahn 6.2.3-6.2.4: "κόσμε" (2-byte code points) and U+1F600 (4 bytes), cut inside code points.
        await using var host = await LifelineTestHost.StartAsync();
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);
        var text = Encoding.UTF8.GetBytes("κόσμε \U0001F600");

        await client.SendRawAsync([
            .. RawWebSocketClient.Frame(0x1, text[..1], fin: false),
            .. RawWebSocketClient.Frame(0x0, text[1..9], fin: false),
            .. RawWebSocketClient.Frame(0x0, text[9..^2], fin: false),
            .. RawWebSocketClient.Frame(0x0, text[^2..])]);

        var echo = await client.ReadFrameAsync(Bound);
        Assert.Equal(0x1, echo!.Value.Opcode);
        Assert.Equal(text, echo.Value.Payload);
    }

    [Fact]
    public async Task TenPings_TenPongsInOrder_EachWithItsPayload()
    {
        // Autobahn 2.10.
        await using var host = await LifelineTestHost.StartAsync();
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);

        await client.SendRawAsync([.. Enumerable.Range(0, 10).SelectMany(i => RawWebSocketClient.Frame(0x9, Encoding.UTF8.GetBytes($"payload-{i}")))]);

        for (var i = 0; i < 10; i++)
        {
            var pong = await client.ReadFrameAsync(Bound);
            Assert.Equal((0xA, $"payload-{i}"), (pong!.Value.Opcode, Encoding.UTF8.GetString(pong.Value.Payload)));
        }
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(3000)]
    [InlineData(4999)]
    public async Task Close_ValidCode_AnsweredWithTheSameCode(int code)
    {
        // Autobahn 7.7.
        await using var host = await LifelineTestHost.StartAsync();
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);

        await client.SendFrameAsync(0x8, [(byte)(code >> 8), (byte)code, .. "bye"u8]);

        Assert.Equal(code, await client.ReadCloseCodeAsync(Bound));
        await client.WaitForEndAsync(Bound);
    }

    public static TheoryData<string, int> Violations => new()
    {
        { "continuation with nothing to continue", 1002 }, // 5.9
        { "a new text frame inside a fragmented message", 1002 }, // 5.17-5.18
        { "a fragmented ping", 1002 }, // 5.3
        { "a ping of 126 bytes", 1002 }, // 2.5
        { "a text frame with RSV2", 1002 }, // 3.2
        { "invalid UTF-8 across fragments", 1007 }, // 6.3.2
        { "a close payload of one byte", 1002 }, // 7.3.2
        { "close code 1005", 1002 }, // 7.9.x
        { "close code 1016", 1002 },
        { "close code 5000", 1002 },
    };

    [Theory]
    [MemberData(nameof(Violations))]
    public async Task Violation_FailsTheConnection_WithTheCodeTheRfcAsks(string violation, int expected)
    {
        var accepted = new TaskCompletionSource<LifelineConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await LifelineTestHost.StartAsync(handler: (connection, ct) =>
        {
            accepted.TrySetResult(connection);
            return LifelineTestHost.EchoAsync(connection, ct);
        });
        using var client = await RawWebSocketClient.ConnectAsync(host.Port);
        var connection = await accepted.Task.WaitAsync(Bound);

        await client.SendRawAsync(violation switch
        {
            "continuation with nothing to continue" => RawWebSocketClient.Frame(0x0, "orphan"u8.ToArray()),
            "a new text frame inside a fragmented message" =>
                [.. RawWebSocketClient.Frame(0x1, "first"u8.ToArray(), fin: false), .. RawWebSocketClient.Frame(0x1, "second"u8.ToArray())],
            "a fragmented ping" => RawWebSocketClient.Frame(0x9, "half"u8.ToArray(), fin: false),
            "a ping of 126 bytes" => RawWebSocketClient.Frame(0x9, new byte[126]),
            "a text frame with RSV2" => RawWebSocketClient.Frame(0x1, "reserved"u8.ToArray(), rsv: 2),
            "invalid UTF-8 across fragments" =>
                [.. RawWebSocketClient.Frame(0x1, [0xCE, 0xBA], fin: false), .. RawWebSocketClient.Frame(0x0, [0xED, 0xA0, 0x80])],
            "a close payload of one byte" => RawWebSocketClient.Frame(0x8, [0x03]),
            "close code 1005" => RawWebSocketClient.Frame(0x8, [0x03, 0xED]),
            "close code 1016" => RawWebSocketClient.Frame(0x8, [0x03, 0xF8]),
            _ => RawWebSocketClient.Frame(0x8, [0x13, 0x88]),
        });

        // The runtime's WebSocket aborts right after its Close frame, and the reset can overtake the frame on the
        // client's side; when the frame arrives it carries the code. The connection records the code it wrote either way.
        int? onTheWire;
        try
        {
            onTheWire = await client.ReadCloseCodeAsync(Bound);
        }
        catch (IOException)
        {
            onTheWire = null;
        }

        Assert.True(onTheWire is null || onTheWire == expected, $"the Close frame carried {onTheWire}, not {expected}");
        await connection.Completion.WaitAsync(Bound);
        Assert.Equal(expected, connection.ClosedWith?.Value);
        await client.WaitForEndAsync(Bound);
    }
}
