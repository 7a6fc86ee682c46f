using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.Reconnect;

namespace Lifeline.Cli.Demo;

/// <summary>One client of the demo: sends a number every tick, records every number it receives and what happened to its connection.</summary>
internal interface IDemoClient : IAsyncDisposable
{
    DemoClientRecord Record { get; }

    /// <summary>Starts connecting and sending; completes once the first connection is open (or the token gives up).</summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Stops sending and closes the connection.</summary>
    Task StopAsync();
}

/// <summary>A <see cref="LifelineClient"/>, with or without sessions, with the demo's short keep-alive.</summary>
internal sealed class LifelineDemoClient : IDemoClient
{
    private readonly LifelineClient _client;
    private readonly DemoTraffic _traffic;
    private readonly DemoLedger _ledger;
    private readonly CancellationTokenSource _stop = new();
    private Task _sending = Task.CompletedTask;
    private Task _receiving = Task.CompletedTask;

    public LifelineDemoClient(DemoClientRecord record, Uri proxy, DemoTraffic traffic, DemoLedger ledger, int seed)
    {
        Record = record;
        _traffic = traffic;
        _ledger = ledger;
        var path = record.Kind == ClientKind.Session ? DemoHost.SessionPath : DemoHost.PlainPath;
        var options = new LifelineClientOptions
        {
            Uri = new Uri(proxy, $"{path}?client={record.Id}"),
            // Demo timings: a dead link is found within 1.5 s (the defaults are 15 s + 15 s).
            KeepAliveInterval = TimeSpan.FromMilliseconds(500),
            KeepAliveTimeout = TimeSpan.FromSeconds(1),
            StablePeriod = TimeSpan.FromSeconds(2),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            CloseTimeout = TimeSpan.FromSeconds(2),
#pragma warning disable CA5394 // Jitter, not secrecy.
            // After 1013 the default waits at least 5 s whatever the hint; 1 s here, so that the server's spread hints decide.
            ReconnectPolicy = new DefaultReconnectPolicy(new ReconnectPolicyOptions { TryAgainLaterBaseDelay = TimeSpan.FromSeconds(1) }, new Random(seed)),
#pragma warning restore CA5394
            Session = record.Kind == ClientKind.Session ? new SessionOptions() : null,
            TimeProvider = traffic.Time,
        };
        _client = new LifelineClient(options);
        _client.StateChanged += OnStateChanged;
        _client.SessionLost += (_, e) => Record.Record(ProbeEventKind.SessionLost, traffic.At(e.Timestamp));
    }

    public DemoClientRecord Record { get; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _receiving = Task.Run(ReceiveAsync, CancellationToken.None);
        await _client.StartAsync(cancellationToken).ConfigureAwait(false);
        _sending = Task.Run(SendAsync, CancellationToken.None);
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _sending.ConfigureAwait(false);
        try
        {
            await _client.StopAsync().WaitAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // DisposeAsync aborts what is left.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _client.DisposeAsync().ConfigureAwait(false);
        await Task.WhenAll(_sending, _receiving).WaitAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private void OnStateChanged(object? sender, LifelineStateChangedEventArgs e)
    {
        var at = _traffic.At(e.Timestamp);
        switch (e.Current)
        {
            case LifelineClientState.Connected:
                Record.Record(ProbeEventKind.Back, at);
                if (e.SessionResumed == true)
                {
                    Record.Record(ProbeEventKind.Resumed, at);
                }

                break;
            case LifelineClientState.Reconnecting:
                if (e.Previous == LifelineClientState.Connected)
                {
                    Record.Record(ProbeEventKind.Lost, at);
                }

                // The attempt itself is made once the delay has passed.
                _ledger.RecordAttempt(Record.Kind, at + (e.ReconnectDelay ?? TimeSpan.Zero).TotalMilliseconds);
                break;
            case LifelineClientState.Closed:
                Record.Record(ProbeEventKind.Lost, at);
                break;
        }
    }

    private async Task SendAsync()
    {
        var next = 1;
        try
        {
            using var timer = new PeriodicTimer(DemoTraffic.Tick, _traffic.Time);
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                if (!_traffic.ShouldSend)
                {
                    continue;
                }

                Record.Up.RecordSent(next, _traffic.Incident);
                try
                {
                    await _client.SendAsync(SequenceLog.Encode(next), WebSocketMessageType.Binary, _stop.Token).ConfigureAwait(false);
                }
                catch (SendQueueFullException)
                {
                    // Counted as sent and never received: lost.
                }

                next++;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or LifelineClosedException)
        {
            // Stopping.
        }
    }

    private async Task ReceiveAsync()
    {
        await foreach (var message in _client.Messages.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            Record.Down.RecordReceived(SequenceLog.Decode(message.Data));
        }
    }
}

/// <summary>
/// What many applications do by hand: a <see cref="ClientWebSocket"/> with its defaults (pings but never waits for a
/// pong), reconnecting every 250 ms whatever the close code says, no backoff, no jitter; a message that cannot be
/// sent is gone.
/// </summary>
internal sealed class NaiveDemoClient(DemoClientRecord record, Uri proxy, DemoTraffic traffic, DemoLedger ledger) : IDemoClient
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(250);

    private readonly Uri _uri = new(proxy, $"{DemoHost.PlainPath}?client={record.Id}");
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstConnected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private ClientWebSocket? _socket;
    private Task _loop = Task.CompletedTask;
    private Task _sending = Task.CompletedTask;

    public DemoClientRecord Record { get; } = record;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(RunAsync, CancellationToken.None);
        _sending = Task.Run(SendAsync, CancellationToken.None);
        await _firstConnected.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (Volatile.Read(ref _socket) is { State: WebSocketState.Open } socket)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2), traffic.Time);
            await _sendLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
                socket.Abort();
            }
            finally
            {
                _sendLock.Release();
            }
        }

        await Task.WhenAll(_loop, _sending).WaitAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        Volatile.Read(ref _socket)?.Abort();
        await Task.WhenAll(_loop, _sending).WaitAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
        _sendLock.Dispose();
    }

    private async Task RunAsync()
    {
        var first = true;
        var buffer = new byte[64];
        while (!_stop.IsCancellationRequested)
        {
            if (!first)
            {
                ledger.RecordAttempt(Record.Kind, traffic.Now);
            }

            first = false;
            using var socket = new ClientWebSocket();
            try
            {
                using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                connectTimeout.CancelAfter(TimeSpan.FromSeconds(5));
                await socket.ConnectAsync(_uri, connectTimeout.Token).ConfigureAwait(false);
                Volatile.Write(ref _socket, socket);
                Record.Record(ProbeEventKind.Back, traffic.Now);
                _firstConnected.TrySetResult();
                while (true)
                {
                    var result = await socket.ReceiveAsync(buffer, _stop.Token).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }

                    Record.Down.RecordReceived(SequenceLog.Decode(buffer.AsMemory(0, result.Count)));
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
            {
                // Refused, reset, closed: try again below.
            }

            Volatile.Write(ref _socket, null);
            if (Record.IsConnected)
            {
                Record.Record(ProbeEventKind.Lost, traffic.Now);
            }

            if (_stop.IsCancellationRequested)
            {
                break;
            }

            try
            {
                await Task.Delay(RetryDelay, traffic.Time, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task SendAsync()
    {
        var next = 1;
        try
        {
            // From the first connection on: before it, every tick would count as a message sent and lost, charged to the
            // first incident played.
            await _firstConnected.Task.WaitAsync(_stop.Token).ConfigureAwait(false);
            using var timer = new PeriodicTimer(DemoTraffic.Tick, traffic.Time);
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                if (!traffic.ShouldSend)
                {
                    continue;
                }

                Record.Up.RecordSent(next, traffic.Incident);
                var sequence = next++;
                if (Volatile.Read(ref _socket) is not { State: WebSocketState.Open } socket)
                {
                    continue; // not connected: the message is dropped
                }

                await _sendLock.WaitAsync(_stop.Token).ConfigureAwait(false);
                try
                {
                    await socket.SendAsync(SequenceLog.Encode(sequence), WebSocketMessageType.Binary, true, _stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or InvalidOperationException)
                {
                    socket.Abort(); // the receive loop notices and reconnects
                }
                finally
                {
                    _sendLock.Release();
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
