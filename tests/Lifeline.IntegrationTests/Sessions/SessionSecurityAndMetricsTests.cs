using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Lifeline.Diagnostics;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Session;
using Lifeline.Session.Wire;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>Sessions bound to an authenticated user, and the session metrics of one host seen through its own meter.</summary>
public sealed class SessionSecurityAndMetricsTests
{
    private const string UserHeader = "X-Test-User";

    [Fact]
    public async Task Resume_WithAnotherUsersToken_IsRefusedWith1008_AndRevealsNothing()
    {
        await using var app = await StartAuthenticatedHostAsync();
        var uri = new Uri($"ws://127.0.0.1:{new Uri(app.Urls.First()).Port}/echo");

        // Alice starts a session and has one message echoed, so the session has data worth stealing.
        using var alice = await ConnectAsync(uri, "alice");
        var (id, token) = await HelloAsync(alice);
        await SendAsync(alice, Frame(w => SessionFrameWriter.WriteData(w, 1, 0, false, "secret"u8)));
        var echoed = await ReceiveFrameAsync(alice);
        Assert.Equal(SessionFrameType.Data, echoed.Type);

        // Mallory presents Alice's real id and token: refused exactly like a made-up token, before any session frame.
        using var mallory = await ConnectAsync(uri, "mallory");
        await SendAsync(mallory, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));
        var (code, reason, frames) = await ReadUntilCloseAsync(mallory);
        Assert.Equal(1008, code);
        Assert.Equal(SessionProtocol.RefusedReason, reason);
        Assert.Empty(frames); // no Resumed, no replayed Data, no SessionLost: nothing about the session

        // An anonymous connection gets the same answer.
        using var anonymous = await ConnectAsync(uri, null);
        await SendAsync(anonymous, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));
        var (anonymousCode, anonymousReason, anonymousFrames) = await ReadUntilCloseAsync(anonymous);
        Assert.Equal((1008, SessionProtocol.RefusedReason), (anonymousCode, anonymousReason));
        Assert.Empty(anonymousFrames);

        // A wrong token for Alice's id: the same code and reason, so the two cannot be told apart.
        using var guesser = await ConnectAsync(uri, "mallory");
        await SendAsync(guesser, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, ResumeToken.Create(), 0))));
        var (guessCode, guessReason, _) = await ReadUntilCloseAsync(guesser);
        Assert.Equal((code, reason), (guessCode, guessReason));

        // Alice's own session is untouched: it still echoes on her socket.
        await SendAsync(alice, Frame(w => SessionFrameWriter.WriteData(w, 2, 1, false, "still mine"u8)));
        var next = await ReceiveFrameAsync(alice);
        Assert.Equal(SessionFrameType.Data, next.Type);
        Assert.Equal(2, next.Sequence);
    }

    [Fact]
    public async Task SessionMetrics_StartedResumedReplayedLost_AreCountedForThisHost()
    {
        var log = new NumberedServerLog { ServerSendCount = 5 };
        await using var host = await SessionTestHost.StartAsync(log, Path.Combine(Path.GetTempPath(), $"lifeline-metrics-{Guid.NewGuid():N}.bin"),
            sessions: o => o.ResumeWindow = TimeSpan.FromSeconds(2)); // room for the resume's connect on a loaded machine
        var factory = host.App.Services.GetRequiredService<IMeterFactory>();
        var seen = new ConcurrentQueue<(string Instrument, long Value, string? Reason)>();
        using var listener = new MeterListener
        {
            // Only this host's meter (its IMeterFactory is the scope): other tests' hosts in parallel cannot add to it.
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == LifelineMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => seen.Enqueue((i.Name, v, ReasonOf(tags))));
        listener.Start();
        long Sum(string name) => seen.Where(m => m.Instrument == name).Sum(m => m.Value);

        // Start a session and read the 5 numbers without acknowledging them (a raw socket sends no Ack).
        var first = await ConnectAsync(host.Uri("/numbered"), null);
        var (id, token) = await HelloAsync(first);
        for (var i = 1; i <= 5; i++)
        {
            Assert.Equal(i, (await ReceiveFrameAsync(first)).Sequence);
        }

        first.Abort();
        first.Dispose();

        // Resume saying nothing was received: the server replays all 5.
        var second = await ConnectAsync(host.Uri("/numbered"), null);
        await SendAsync(second, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 0))));
        var resumed = await ReceiveFrameAsync(second);
        Assert.Equal(SessionFrameType.Resumed, resumed.Type);
        Assert.Equal(5, resumed.Resumed.ReplayCount);
        second.Abort();
        second.Dispose();

        // Gone past the 2 s window: lost (not found).
        await Wait.UntilAsync(() => Sum("lifeline.server.sessions_lost") >= 1, TimeSpan.FromSeconds(15), "the session to expire");

        Assert.Equal(1, Sum("lifeline.server.sessions_started"));
        Assert.Equal(1, Sum("lifeline.server.sessions_resumed"));
        Assert.Equal(5, Sum("lifeline.server.messages_replayed"));
        Assert.Equal(1, Sum("lifeline.server.sessions_lost"));
        Assert.Equal(nameof(SessionLostReason.NotFound), seen.Single(m => m.Instrument == "lifeline.server.sessions_lost").Reason);

        // The client asks for it again, twice: answered SessionLost (not found), and not counted lost again (before: 3).
        for (var i = 0; i < 2; i++)
        {
            using var late = await ConnectAsync(host.Uri("/numbered"), null);
            await SendAsync(late, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.Resume(id, token, 5))));
            var lost = await ReceiveFrameAsync(late);
            Assert.Equal(SessionFrameType.SessionLost, lost.Type);
            Assert.Equal(SessionLostReason.NotFound, lost.SessionLost.Reason);
        }

        Assert.Equal(1, Sum("lifeline.server.sessions_lost"));
        Assert.Equal(2, Sum("lifeline.server.sessions_not_found"));
    }

    private static string? ReasonOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "reason")
            {
                return tag.Value as string;
            }
        }

        return null;
    }

    private static async Task<WebApplication> StartAuthenticatedHostAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        builder.Services.AddAuthentication(HeaderAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, HeaderAuthenticationHandler>(HeaderAuthenticationHandler.SchemeName, null);
        builder.Services.AddLifelineSessions(o => o.DrainFilePath = Path.Combine(Path.GetTempPath(), $"lifeline-auth-{Guid.NewGuid():N}.bin"));
        var app = builder.Build();
        app.UseAuthentication();
        app.MapLifelineSession("/echo", async (session, ct) =>
        {
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                await session.SendAsync(message.Data, message.Type, ct);
            }
        });
        await app.StartAsync();
        return app;
    }

    private static async Task<ClientWebSocket> ConnectAsync(Uri uri, string? user)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(SessionProtocol.SubProtocol);
        if (user is not null)
        {
            socket.Options.SetRequestHeader(UserHeader, user);
        }

        await socket.ConnectAsync(uri, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(SessionProtocol.SubProtocol, socket.SubProtocol);
        return socket;
    }

    private static byte[] Frame(Action<IBufferWriter<byte>> write)
    {
        var writer = new ArrayBufferWriter<byte>();
        write(writer);
        return writer.WrittenSpan.ToArray();
    }

    private static Task SendAsync(ClientWebSocket socket, byte[] frame) =>
        socket.SendAsync(frame, WebSocketMessageType.Binary, true, CancellationToken.None);

    private static async Task<SessionFrameHeader> ReceiveFrameAsync(ClientWebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        var result = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotEqual(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(SessionFrameError.None, SessionFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.AsMemory(0, result.Count)), int.MaxValue, out var header, out _));
        return header;
    }

    private static async Task<(SessionId Id, ResumeToken Token)> HelloAsync(ClientWebSocket socket)
    {
        await SendAsync(socket, Frame(w => SessionFrameWriter.WriteHello(w, HelloFrame.NewSession())));
        var header = await ReceiveFrameAsync(socket);
        Assert.Equal(SessionFrameType.Welcome, header.Type);
        return (header.Welcome.SessionId, header.Welcome.ResumeToken);
    }

    private static async Task<(int? Code, string? Reason, List<byte[]> Frames)> ReadUntilCloseAsync(ClientWebSocket socket)
    {
        var frames = new List<byte[]>();
        var buffer = new byte[64 * 1024];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return ((int?)socket.CloseStatus, socket.CloseStatusDescription, frames);
            }

            frames.Add(buffer.AsSpan(0, result.Count).ToArray());
        }
    }

    /// <summary>Authenticates whoever names themselves in the X-Test-User header (tests only); no header: anonymous.</summary>
    private sealed class HeaderAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string SchemeName = "TestHeader";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (Request.Headers[UserHeader].ToString() is not { Length: > 0 } name)
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, name), new Claim(ClaimTypes.Name, name)], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
        }
    }
}
