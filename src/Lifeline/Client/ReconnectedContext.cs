using System.Net.WebSockets;

namespace Lifeline.Client;

/// <summary>
/// Passed to <see cref="LifelineClientOptions.OnReconnected"/>: re-subscribe or re-authenticate here. In plain mode it
/// runs before queued sends are flushed, and sends made through this context go out first, ahead of the queue. In session
/// mode they join the queue, behind the messages sent while disconnected (a session numbers every message in the order it
/// was accepted, and the server delivers them in that order), and the queue flushes while the hook runs.
/// </summary>
public sealed class ReconnectedContext
{
    private readonly Func<ReadOnlyMemory<byte>, WebSocketMessageType, CancellationToken, ValueTask> _send;

    internal ReconnectedContext(int attempts, TimeSpan downtime, Func<ReadOnlyMemory<byte>, WebSocketMessageType, CancellationToken, ValueTask> send)
    {
        Attempts = attempts;
        Downtime = downtime;
        _send = send;
    }

    /// <summary>Session mode: true when the session resumed, false when a new one started. Null in plain mode.</summary>
    public bool? SessionResumed { get; init; }

    /// <summary>Session mode, resumed: how many of the client's messages were resent. Null otherwise.</summary>
    public long? MessagesReplayedToServer { get; init; }

    /// <summary>Session mode, resumed: how many messages the server resends. Null otherwise.</summary>
    public long? MessagesReplayedFromServer { get; init; }

    /// <summary>How many attempts this reconnection took.</summary>
    public int Attempts { get; }

    /// <summary>How long the client was disconnected.</summary>
    public TimeSpan Downtime { get; }

    /// <summary>Sends a text message: plain mode immediately, ahead of anything queued; session mode queued (see the class).</summary>
    public ValueTask SendTextAsync(string text, CancellationToken cancellationToken = default) =>
        _send(System.Text.Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);

    /// <summary>Sends a message: plain mode immediately, ahead of anything queued; session mode queued (see the class).</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type = WebSocketMessageType.Binary, CancellationToken cancellationToken = default) =>
        _send(data, type, cancellationToken);
}
