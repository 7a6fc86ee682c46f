using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Lifeline.AspNetCore;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Redis;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lifeline.IntegrationTests.Redis;

/// <summary>What the nodes' handlers saw, shared by every node of one test (restarts included).</summary>
internal sealed class ClusterLog
{
    public int HandlerStarts;

    public int ResumedStarts;

    public int SendErrors;

    public int GroupJoins;

    public int HandlerReturns;

    /// <summary>Members of /group that left "g" (they sent the text "leave").</summary>
    public int GroupLeaves;

    /// <summary>The nodes on which a /group-late-exit handler returned (said half a second after it did).</summary>
    public ConcurrentQueue<string> LateExits { get; } = new();

    /// <summary>Ends every /finish handler (and so its session).</summary>
    public TaskCompletionSource Finish { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// One server node on real Kestrel at a fixed port of 127.0.0.1 with the session store and fan-out on Redis: /echo
/// sends every client message back; /group joins group "g" and reads (the text "leave" leaves it); /finish returns once <see cref="ClusterLog.Finish"/> is set;
/// /group-late-exit joins "g" and returns 2 s after its session ended. <see cref="KillAsync"/> stops it as a kill -9
/// would: its Redis connection is closed first (nothing more reaches the store), its sockets are aborted, no drain.
/// </summary>
internal sealed class ClusterNode : IAsyncDisposable
{
    private readonly ConcurrentDictionary<HttpContext, byte> _contexts = new();
    private readonly Action<LifelineSessionOptions>? _sessions;
    private readonly Action<LifelineServerOptions>? _server;
    private readonly Action<IServiceCollection>? _services;
    private WebApplication? _app;
    private bool _killed;

    private ClusterNode(string name, int port, Action<LifelineSessionOptions>? sessions, Action<LifelineServerOptions>? server, Action<IServiceCollection>? services)
    {
        Name = name;
        Port = port;
        _sessions = sessions;
        _server = server;
        _services = services;
    }

    public string Name { get; }

    public int Port { get; }

    public bool IsRunning => _app is not null;

    public LifelineSessionManager Sessions => _app!.Services.GetRequiredService<LifelineSessionManager>();

    public Uri Uri(string path) => new($"ws://127.0.0.1:{Port}{path}");

    /// <param name="sessions">Changes to the test's session options, on every start of this node.</param>
    /// <param name="server">Changes to the test's server options, on every start of this node.</param>
    /// <param name="services">Changes to the node's services after the Redis ones are added (a decorated store).</param>
    public static async Task<ClusterNode> StartAsync(string name, int port, string redis, string prefix, ClusterLog log,
        Action<LifelineSessionOptions>? sessions = null, Action<LifelineServerOptions>? server = null, Action<IServiceCollection>? services = null)
    {
        var node = new ClusterNode(name, port, sessions, server, services);
        await node.StartAsync(redis, prefix, log);
        return node;
    }

    public async Task StartAsync(string redis, string prefix, ClusterLog log)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("LIFELINE_TEST_LOG") == "1")
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        }

        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, Port));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        builder.Services.AddLifeline(o =>
        {
            o.RestartHintMin = TimeSpan.FromMilliseconds(50);
            o.RestartHintMax = TimeSpan.FromMilliseconds(300);
            o.DrainTimeout = TimeSpan.FromSeconds(5);
            _server?.Invoke(o);
        });
        builder.Services.AddLifelineSessions(o =>
        {
            o.ResumeWindow = TimeSpan.FromSeconds(60);
            o.StoreWriteTimeout = TimeSpan.FromSeconds(10);
            _sessions?.Invoke(o);
        });
        builder.Services.AddLifelineRedis(o =>
        {
            o.Configuration = redis;
            o.KeyPrefix = prefix;
            o.NodeId = Name;
            o.OperationTimeout = TimeSpan.FromSeconds(1);
            o.ConnectTimeout = TimeSpan.FromSeconds(1);
        });
        _services?.Invoke(builder.Services);
        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            _contexts.TryAdd(context, 0);
            try
            {
                await next(context);
            }
            finally
            {
                _contexts.TryRemove(context, out _);
            }
        });
        app.MapLifelineSession("/echo", (session, ct) => EchoAsync(session, log, () => Volatile.Read(ref _killed), ct));
        app.MapLifelineSession("/send-then-return", async (session, ct) =>
        {
            // Answers its first message with a send it does not wait for, and returns: the session is over.
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                _ = session.SendAsync("last words"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, CancellationToken.None).AsTask();
                Interlocked.Increment(ref log.HandlerReturns);
                return;
            }
        });
        app.MapLifelineSession("/echo-uncaught", async (session, ct) =>
        {
            // Lets every failure of its sends escape, a store that stays away included.
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                await session.SendAsync(message.Data, message.Type, ct);
            }
        });
        app.MapLifelineSession("/pushes-then-answer", async (session, ct) =>
        {
            // "one": one push. Any other message: 300 pushes (answering nothing), then the answer, all queued at once.
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                if (message.Text == "one")
                {
                    _ = session.PushAsync("pushed"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, ct).AsTask();
                    continue;
                }

                var sends = new List<Task>();
                for (var i = 1; i <= 300; i++)
                {
                    sends.Add(session.PushAsync(System.Text.Encoding.UTF8.GetBytes($"push {i}"), System.Net.WebSockets.WebSocketMessageType.Text, ct).AsTask());
                }

                sends.Add(session.SendTextAsync("answer", ct).AsTask());
                await Task.WhenAll(sends);
            }
        });
        app.MapLifelineSession("/state", async (session, ct) =>
        {
            // Keeps the last message in the session's state, set directly (not through a send that updates it).
            await foreach (var message in session.Messages.ReadAllAsync(ct))
            {
                session.State.Set("last", message.Text);
            }
        });
        app.MapLifelineSession("/finish", async (session, ct) =>
        {
            Interlocked.Increment(ref log.HandlerStarts);
            if (session.IsResumed)
            {
                Interlocked.Increment(ref log.ResumedStarts);
            }

            await log.Finish.Task.WaitAsync(ct); // then the handler returns: the session is over
        });
        app.MapLifelineSession("/five-then-finish", async (session, ct) =>
        {
            // Sends 1..5 (each stored before the next), then returns once Finish is set: a job's last answers.
            for (var i = 1; i <= 5; i++)
            {
                await session.SendAsync(BitConverter.GetBytes(i), System.Net.WebSockets.WebSocketMessageType.Binary, ct);
            }

            await log.Finish.Task.WaitAsync(ct);
        });
        app.MapLifelineSession("/group", async (session, ct) =>
        {
            if (!session.IsResumed)
            {
                session.JoinGroup("g");
            }

            Interlocked.Increment(ref log.GroupJoins);
            await foreach (var message in session.Messages.ReadAllAsync(CancellationToken.None))
            {
                if (message.Data.Span.SequenceEqual("leave"u8))
                {
                    session.LeaveGroup("g");
                    Interlocked.Increment(ref log.GroupLeaves);
                }
            }
        });
        app.MapLifelineSession("/group-late-exit", async (session, ct) =>
        {
            if (!session.IsResumed)
            {
                session.JoinGroup("g");
            }

            await Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);

            // A handler that cleans up after its session ended, and so returns a while later. The node ends the session's
            // copy right after the return: it is said half a second after that.
            await Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None);
            _ = Task.Delay(TimeSpan.FromMilliseconds(500)).ContinueWith(_ => log.LateExits.Enqueue(Name), TaskScheduler.Default);
        });
        await app.StartAsync();
        Volatile.Write(ref _killed, false);
        _app = app;
    }

    /// <summary>A graceful stop: 1012 to every connection, then the drain commits the sessions' state.</summary>
    public async Task DrainAsync()
    {
        if (Interlocked.Exchange(ref _app, null) is { } app)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>Like kill -9: nothing more reaches Redis, every socket drops without a Close frame, no drain.</summary>
    public async Task KillAsync()
    {
        if (Interlocked.Exchange(ref _app, null) is not { } app)
        {
            return;
        }

        Volatile.Write(ref _killed, true);
        await app.Services.GetRequiredService<LifelineRedisConnection>().DisposeAsync();
        foreach (var context in _contexts.Keys)
        {
            try
            {
                context.Abort();
            }
            catch (ObjectDisposedException)
            {
                // That request ended between the listing and the abort.
            }
        }

        using var now = new CancellationTokenSource();
        await now.CancelAsync();
        try
        {
            await app.StopAsync(now.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await app.DisposeAsync();
    }

    public async ValueTask DisposeAsync() => await KillAsync();

    /// <summary>
    /// A node subscribes to the fan-out channel in the background when it starts, and a message published before then
    /// does not reach it: waits until its subscription is confirmed.
    /// </summary>
    public Task WaitForFanoutAsync() =>
        Wait.UntilAsync(() => Sessions.IsFanoutSubscribed, TimeSpan.FromSeconds(20), $"{Name}'s fan-out subscription");

    private static async Task EchoAsync(LifelineSession session, ClusterLog log, Func<bool> killed, CancellationToken ct)
    {
        Interlocked.Increment(ref log.HandlerStarts);
        if (session.IsResumed)
        {
            Interlocked.Increment(ref log.ResumedStarts);
        }

        await foreach (var message in session.Messages.ReadAllAsync(CancellationToken.None))
        {
            try
            {
                await session.SendAsync(message.Data, message.Type, ct);
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
            {
                if (killed())
                {
                    // A killed process runs no more code. Here the node lives on in-process and its sends fail once its
                    // Redis link is closed (ObjectDisposedException); returning would end the session and close its socket
                    // with 1000 before the kill aborts it, which no real kill does. Wait for the session's end instead.
                    await Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);
                }

                return; // ended, drained or taken over: the client resends what this node did not store
            }
            catch (Lifeline.Session.Store.SessionStoreUnavailableException)
            {
                Interlocked.Increment(ref log.SendErrors); // not confirmed in time; it keeps its place and goes out later
            }
        }
    }
}

/// <summary>A real haproxy on 127.0.0.1 balancing WebSockets round robin over the nodes (config in a temp file).</summary>
internal sealed class HaProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _config;

    private HaProxy(Process process, string config, int port)
    {
        _process = process;
        _config = config;
        Port = port;
    }

    public int Port { get; }

    public Uri Uri(string path) => new($"ws://127.0.0.1:{Port}{path}");

    public static async Task<HaProxy> StartAsync(IEnumerable<int> backends)
    {
        var executable = new[] { "/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("haproxy is not installed; run .ci/install-deps.");
        var port = RedisServer.FreePort();
        var config = Path.Combine(Path.GetTempPath(), $"lifeline-haproxy-{Guid.NewGuid():N}.cfg");
        var servers = string.Join("\n", backends.Select((p, i) => string.Create(CultureInfo.InvariantCulture,
            $"    server node{i + 1} 127.0.0.1:{p} check inter 300ms fall 1 rise 1")));
        await File.WriteAllTextAsync(config, $"""
            global
                maxconn 4096
            defaults
                mode http
                timeout connect 2s
                timeout client 60s
                timeout server 60s
                timeout tunnel 1h
                retries 3
                option redispatch
            frontend lifeline
                bind 127.0.0.1:{port}
                default_backend nodes
            backend nodes
                balance roundrobin
            {servers}

            """);
        var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-f", config, "-db" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("haproxy did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var proxy = new HaProxy(process, config, port);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"haproxy exited with {process.ExitCode}.");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return proxy;
            }
            catch (SocketException) when (deadline.Elapsed < TimeSpan.FromSeconds(15))
            {
                await Task.Delay(50);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }

        _process.Dispose();
        File.Delete(_config);
    }
}

/// <summary>A streaming session client: sends 1, 2, 3, ... to /echo and records the echoes.</summary>
internal sealed class StreamingClient : IAsyncDisposable
{
    private readonly Lifeline.Client.LifelineClient _client;
    private readonly CancellationTokenSource _stop = new();
    private Task _sending = Task.CompletedTask;
    private Task _reading = Task.CompletedTask;

    public StreamingClient(Uri uri)
    {
        var options = Client.ClientTestOptions.Fast(uri);
        options.Session = new Lifeline.Client.SessionOptions();
        _client = new Lifeline.Client.LifelineClient(options);
        _client.SessionLost += (_, _) => Interlocked.Increment(ref SessionsLost);
        _client.StateChanged += (_, e) =>
        {
            lock (_states)
            {
                _states.Add($"{e.Current}({e.Close?.ToString() ?? e.Failure?.Description}{(e.SessionResumed is { } r ? r ? " resumed" : " new session" : "")})");
            }
        };
    }

    private readonly List<string> _states = [];

    /// <summary>Waits (bounded) until every client has received a few more echoes; on a timeout, says which did not.</summary>
    public static async Task TrafficFlowsAsync(IReadOnlyList<StreamingClient> clients, int more = 5)
    {
        var marks = clients.Select(c => c.EchoCount).ToArray();
        try
        {
            await Infrastructure.Wait.UntilAsync(() => clients.Select((c, i) => c.EchoCount >= marks[i] + more).All(x => x), TimeSpan.FromSeconds(60), "traffic on every client");
        }
        catch (TimeoutException e)
        {
            var stuck = clients.Select((c, i) => (Client: c, Mark: marks[i])).Where(x => x.Client.EchoCount < x.Mark + more).ToList();
            throw new TimeoutException($"{e.Message} {stuck.Count} of {clients.Count} clients stalled, e.g. " +
                string.Join(" | ", stuck.Take(3).Select(x => $"mark {x.Mark}: {x.Client.Describe()}")), e);
        }
    }

    /// <summary>Waits (bounded) until every client has every echo; on a timeout, says which did not and what they miss.</summary>
    public static async Task AllEchoesAsync(IReadOnlyList<StreamingClient> clients)
    {
        try
        {
            await Infrastructure.Wait.UntilAsync(() => clients.All(c => c.HasAllEchoes()), TimeSpan.FromSeconds(60), "every echo");
        }
        catch (TimeoutException e)
        {
            var missing = clients.Where(c => !c.HasAllEchoes()).ToList();
            throw new TimeoutException($"{e.Message} {missing.Count} of {clients.Count} clients miss echoes, e.g. " +
                string.Join(" | ", missing.Take(3).Select(c => c.Describe())), e);
        }
    }

    private int EchoCount
    {
        get
        {
            lock (Received)
            {
                return Received.Count;
            }
        }
    }

    /// <summary>What this client did, for a failure message.</summary>
    public string Describe()
    {
        string states;
        lock (_states)
        {
            states = string.Join(", ", _states.TakeLast(8));
        }

        List<int> received;
        lock (Received)
        {
            received = [.. Received];
        }

        var missing = Enumerable.Range(1, Sent).Except(received).Take(5);
        var statistics = _client.Statistics;
        return $"session {_client.SessionId}, state {_client.State}, sent {Sent}, echoes {EchoCount}, unacknowledged {_client.UnacknowledgedMessages}, queued {statistics.QueuedMessages}, " +
            $"sessions {SessionCounts}, connects {statistics.Connects}, first missing [{string.Join(",", missing)}], last received [{string.Join(",", received.TakeLast(3))}]; last states: {states}";
    }

    public List<int> Received { get; } = [];

    public int Sent;

    public int SessionsLost;

    /// <summary>How many sessions this client started, resumed and lost.</summary>
    public (long Started, long Resumed, long Lost) SessionCounts => _client.SessionCounts;

    public async Task StartAsync(TimeSpan interval)
    {
        await _client.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        _reading = Task.Run(async () =>
        {
            try
            {
                await foreach (var message in _client.ReadAllAsync(CancellationToken.None))
                {
                    lock (Received)
                    {
                        Received.Add(BitConverter.ToInt32(message.Data.Span));
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or Lifeline.Client.LifelineClosedException)
            {
            }
        });
        _sending = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                var n = Sent + 1;
                await _client.SendAsync(BitConverter.GetBytes(n), WebSocketMessageType.Binary);
                Sent = n;
                try
                {
                    await Task.Delay(interval, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        });
    }

    public async Task StopSendingAsync()
    {
        await _stop.CancelAsync();
        await _sending;
    }

    public bool HasAllEchoes()
    {
        lock (Received)
        {
            return Received.Count >= Sent;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _client.DisposeAsync();
        _stop.Dispose();
    }
}
