using System.Net.WebSockets;
using System.Text;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>A raw ClientWebSocket (not the Lifeline client) that records how the server closed it and answers the close.</summary>
internal sealed class PlainClient : IAsyncDisposable
{
    private readonly ClientWebSocket _socket = new();
    private readonly TaskCompletionSource<(int? Code, string? Reason)> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _messages = [];
    private Task _receiving = Task.CompletedTask;

    public Task<(int? Code, string? Reason)> Closed => _closed.Task;

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    public WebSocket Socket => _socket;

    public static async Task<PlainClient> ConnectAsync(Uri uri, TimeSpan? keepAlive = null)
    {
        var client = new PlainClient();
        client._socket.Options.KeepAliveInterval = keepAlive ?? TimeSpan.Zero;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await client._socket.ConnectAsync(uri, timeout.Token);
        client._receiving = client.ReceiveAsync();
        return client;
    }

    public Task SendTextAsync(string text) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    private async Task ReceiveAsync()
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    var code = (int?)_socket.CloseStatus;
                    var reason = _socket.CloseStatusDescription;
                    _closed.TrySetResult((code, reason));
                    if (_socket.State == WebSocketState.CloseReceived)
                    {
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    }

                    return;
                }

                lock (_messages)
                {
                    _messages.Add(Encoding.UTF8.GetString(buffer, 0, result.Count));
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            _closed.TrySetResult((null, "no Close frame: " + e.Message));
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Once the server's Close was read, the receive loop answers it and the runtime then disposes the connection's
        // stream itself; an Abort racing that disposal threw a NullReferenceException inside the runtime
        // (HttpContentStream.Dispose; CI, 2026-11-27). So the loop finishes its answer first. Otherwise the loop is
        // still reading: the Abort ends it.
        if (!_closed.Task.IsCompleted)
        {
            _socket.Abort();
        }

        try
        {
            await _receiving.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            // An answer stuck on a dead link: the Abort below ends it.
        }

        _socket.Abort();
        _socket.Dispose();
    }
}
