using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Lifeline.AspNetCore;
using Lifeline.AspNetCore.Dashboard;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.IntegrationTests.Dashboard;

/// <summary>
/// The dashboard's JSON and its live feed reflect real connections and a real drain. Metrics are process-wide and
/// other tests run beside these, so counts taken from the meter are checked as lower bounds; connections and drain
/// progress come from this host alone.
/// </summary>
public sealed class DashboardDataTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task DashboardData_ConnectionsOpened_AreCountedAndAccepted()
    {
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineDashboard());
        using var http = Http(host);
        await using var a = await PlainClient.ConnectAsync(host.Uri());
        await using var b = await PlainClient.ConnectAsync(host.Uri());
        await using var c = await PlainClient.ConnectAsync(host.Uri());

        var data = await PollAsync(http, d => d.GetProperty("connections").GetInt32() == 3, "3 connections on /data");

        Assert.False(data.GetProperty("drain").GetProperty("draining").GetBoolean());
        var accepted = data.GetProperty("instruments").EnumerateArray().Single(i => i.GetProperty("name").GetString() == "lifeline.server.accepted");
        Assert.True(accepted.GetProperty("total").GetDouble() >= 3);
        Assert.True(data.GetProperty("series").GetProperty("accepts").EnumerateArray().Sum(v => v.GetDouble()) >= 3);
        Assert.Equal(5, data.GetProperty("closes").GetProperty("bucketSeconds").GetInt32());
    }

    [Fact]
    public async Task DashboardFeed_PagesWithinHalfASecond_ShareOneSnapshotAndItsJson()
    {
        // Before, every page of the live feed built and serialized its own snapshot every second.
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineDashboard());
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var dashboard = new LifelineDashboard(host.Server, time);
        var serialized = 0;
        string Serialize(DashboardSnapshot snapshot)
        {
            serialized++;
            return snapshot.Time.ToString("O", CultureInfo.InvariantCulture);
        }

        var first = dashboard.CaptureShared();
        time.Advance(LifelineDashboard.SharedFor - TimeSpan.FromMilliseconds(1));
        var second = dashboard.CaptureShared();
        Assert.Same(first, second);
        Assert.Equal(first.Json(Serialize), second.Json(Serialize));
        Assert.Equal(1, serialized);

        time.Advance(TimeSpan.FromMilliseconds(1));
        var third = dashboard.CaptureShared();
        Assert.NotSame(first, third);
        Assert.True(third.Snapshot.Time > first.Snapshot.Time);
    }

    [Fact]
    public async Task DashboardData_SessionsHeld_AreCounted()
    {
        // Before, "sessions" summed up-down counters named like sessions, and the server had none: always 0.
        await using var host = await LifelineTestHost.StartAsync(
            services: s => s.AddLifelineSessions(),
            map: app =>
            {
                app.MapLifelineSession("/s", async (session, ct) =>
                {
                    await foreach (var _ in session.Messages.ReadAllAsync(ct))
                    {
                    }
                });
                app.MapLifelineDashboard();
            });
        using var http = Http(host);
        await using var first = new LifelineClient(Sessions.SessionResumeTests.SessionClient(host.Uri("/s")));
        await using var second = new LifelineClient(Sessions.SessionResumeTests.SessionClient(host.Uri("/s")));
        await first.StartAsync().WaitAsync(Bound);
        await second.StartAsync().WaitAsync(Bound);

        var data = await PollAsync(http, d => d.GetProperty("sessions").GetDouble() == 2, "2 sessions on /data");
        var instrument = data.GetProperty("instruments").EnumerateArray().Single(i => i.GetProperty("name").GetString() == "lifeline.server.sessions");
        Assert.Equal("updown", instrument.GetProperty("kind").GetString());
    }

    [Fact]
    public async Task DashboardRates_NewSessionRefusedAtMaxSessions_CountsAsAReject()
    {
        // Before, rejects read lifeline.server.rejected alone, and a session refused at MaxSessions (its connection was
        // accepted) showed nowhere but in the instruments list.
        await using var host = await LifelineTestHost.StartAsync(
            services: s => s.AddLifelineSessions(o => o.MaxSessions = 1),
            map: app => app.MapLifelineSession("/s", async (session, ct) =>
            {
                await foreach (var _ in session.Messages.ReadAllAsync(ct))
                {
                }
            }));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var dashboard = new LifelineDashboard(host.Server, time, host.App.Services.GetRequiredService<IMeterFactory>());

        await using var held = await PlainClient.ConnectAsync(host.Uri("/s")); // a plain-mode connection holds a session too
        var sessions = host.App.Services.GetRequiredService<LifelineSessionManager>();
        await Wait.UntilAsync(() => sessions.Count == 1, Bound, "the first session held"); // its handler runs after the upgrade
        await using var refused = await PlainClient.ConnectAsync(host.Uri("/s"));
        Assert.Equal(1013, (await refused.Closed.WaitAsync(Bound)).Code);

        time.Advance(TimeSpan.FromSeconds(1)); // the refusal's second is now the last complete one
        var snapshot = dashboard.Capture();
        Assert.True(snapshot.Rates.Rejects >= 1, $"rejects {snapshot.Rates.Rejects}");
        Assert.True(snapshot.Instruments.Single(i => i.Name == "lifeline.server.sessions_refused").Total >= 1);
    }

    [Fact]
    public async Task DashboardEvents_Drain_PushesThe1012ClosesAndDrainProgress()
    {
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineDashboard());
        using var http = Http(host);
        var clients = new List<PlainClient>();
        try
        {
            await ConnectAsync(host, http, clients, 3);
            using var feed = await http.GetAsync("/lifeline/dashboard/events", HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal("text/event-stream", feed.Content.Headers.ContentType?.MediaType);
            using var reader = new StreamReader(await feed.Content.ReadAsStreamAsync());
            var first = await NextSnapshotAsync(reader);
            Assert.Equal(3, first.GetProperty("connections").GetInt32());

            var stop = host.StopAsync(); // SIGTERM's path: 1012 to every connection, then drain
            foreach (var client in clients)
            {
                Assert.Equal(1012, (await client.Closed.WaitAsync(Bound)).Code);
            }

            // The feed carries on through the drain and ends after it with the final picture.
            JsonElement last = first;
            using var timeout = new CancellationTokenSource(Bound);
            while (await NextSnapshotOrEndAsync(reader, timeout.Token) is { } snapshot)
            {
                last = snapshot;
            }

            var drain = last.GetProperty("drain");
            Assert.True(drain.GetProperty("draining").GetBoolean());
            Assert.True(drain.GetProperty("finished").GetBoolean());
            Assert.Equal(3, drain.GetProperty("connectionsAtStart").GetInt32());
            Assert.Equal(0, drain.GetProperty("connectionsLeft").GetInt32());
            Assert.Equal(3, drain.GetProperty("closesSent").GetInt64());
            Assert.NotEqual(JsonValueKind.Null, drain.GetProperty("startedAt").ValueKind);
            var series1012 = last.GetProperty("closes").GetProperty("codes").EnumerateArray().Single(s => s.GetProperty("code").GetInt32() == 1012);
            Assert.True(series1012.GetProperty("window").GetInt64() >= 3);
            Assert.Equal(series1012.GetProperty("window").GetInt64(), series1012.GetProperty("buckets").EnumerateArray().Sum(b => b.GetInt64()));
            Assert.Equal(60, series1012.GetProperty("buckets").GetArrayLength());
            await stop.WaitAsync(Bound);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task DashboardData_LookedAtOnlyAfterADrain_ReportsTheConnectionsItBeganWith()
    {
        // The dashboard used to note the drain's start the first time it saw it (a close measured, a snapshot taken),
        // so a drain that was quicker than its first look reported 0 connections at the start (CI saw it once).
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineDashboard());
        using var http = Http(host);
        var clients = new List<PlainClient>();
        try
        {
            await ConnectAsync(host, http, clients, 3);
            await host.Server.DrainAsync().WaitAsync(Bound); // the drain alone: the host still serves /data
            var drain = (await PollAsync(http, d => d.GetProperty("drain").GetProperty("finished").GetBoolean(), "a finished drain")).GetProperty("drain");

            Assert.Equal(3, drain.GetProperty("connectionsAtStart").GetInt32());
            Assert.Equal(0, drain.GetProperty("connectionsLeft").GetInt32());
            Assert.Equal(3, drain.GetProperty("closesSent").GetInt64());
            Assert.NotEqual(JsonValueKind.Null, drain.GetProperty("startedAt").ValueKind);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task MapLifelineDashboard_Page_IsSelfContainedAndPointsAtItsPrefix()
    {
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineDashboard("/ops/live"));
        using var http = Http(host);

        using var response = await http.GetAsync("/ops/live");
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("location.pathname", html, StringComparison.Ordinal); // its feed is found from its own address
        Assert.DoesNotContain("src=\"http", html, StringComparison.Ordinal);
        Assert.DoesNotContain("href=\"http", html, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/ops/live/data")).StatusCode);
    }

    [Fact]
    public async Task MapLifelineDashboard_HeadOfThePageAndTheData_AnswersAsGetWithoutABody()
    {
        // An uptime check or a proxy's health probe asks with HEAD; before, the page and /data answered 405.
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineDashboard("/ops/live"));
        using var http = Http(host);
        foreach (var path in new[] { "/ops/live", "/ops/live/data" })
        {
            using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        }
    }

    /// <summary>Connects <paramref name="count"/> plain clients (into <paramref name="clients"/>, for the caller to dispose) and waits until /data counts them.</summary>
    private static async Task ConnectAsync(LifelineTestHost host, HttpClient http, List<PlainClient> clients, int count)
    {
        for (var i = 0; i < count; i++)
        {
            clients.Add(await PlainClient.ConnectAsync(host.Uri()));
        }

        await PollAsync(http, d => d.GetProperty("connections").GetInt32() == count, $"{count} connections on /data");
    }

    private static HttpClient Http(LifelineTestHost host) =>
        new() { BaseAddress = new Uri($"http://127.0.0.1:{host.Port}"), Timeout = Bound };

    private static async Task<JsonElement> PollAsync(HttpClient http, Func<JsonElement, bool> condition, string what)
    {
        using var timeout = new CancellationTokenSource(Bound);
        while (true)
        {
            var data = JsonDocument.Parse(await http.GetStringAsync("/lifeline/dashboard/data", timeout.Token)).RootElement;
            if (condition(data))
            {
                return data;
            }

            try
            {
                await Task.Delay(50, timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Timed out waiting for {what}; last: {data}");
            }
        }
    }

    private static async Task<JsonElement> NextSnapshotAsync(StreamReader reader)
    {
        using var timeout = new CancellationTokenSource(Bound);
        return await NextSnapshotOrEndAsync(reader, timeout.Token) ?? throw new InvalidOperationException("The feed ended.");
    }

    /// <summary>The next "snapshot" event, or null at the "end" event or the end of the stream.</summary>
    private static async Task<JsonElement?> NextSnapshotOrEndAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        string? name = null;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                if (name == "end")
                {
                    return null;
                }

                if (name == "snapshot")
                {
                    return JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone();
                }
            }
        }

        return null;
    }
}
