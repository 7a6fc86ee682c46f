using Lifeline.Session;

namespace Lifeline.Client;

/// <summary>
/// Turns on lossless sessions (<c>lifeline.v1</c>, docs/protocol.md section 5) for a <see cref="LifelineClient"/>:
/// set <see cref="LifelineClientOptions.Session"/> to an instance. Both directions are numbered and acknowledged,
/// unacknowledged messages are replayed after a reconnect, and the application reads every message exactly once and in
/// order. When replay is impossible, <see cref="LifelineClient.SessionLost"/> says what was lost.
/// </summary>
public sealed class SessionOptions
{
    private TimeSpan _handshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Bounds of the outbound replay buffer (unacknowledged sends). Default: 10,000 messages, 1 MiB, 5 minutes, full mode Wait.</summary>
    public ReplayBufferOptions Replay { get; } = new();

    /// <summary>
    /// When received messages are acknowledged. Default: after 4,096 messages, 256 KiB or 200 ms, whichever comes first,
    /// and before half of the replay bounds the server states in its Welcome (10,000 messages and 1 MiB for a Lifeline
    /// server's defaults). Fewer acks than a server sends (1,024) because the client knows the server's bounds: each Ack
    /// is a frame the server must read, and in a flood of small messages every one of them costs it a wake-up.
    /// </summary>
    public SessionAckOptions Ack { get; } = new() { MaxMessages = 4096 };

    /// <summary>
    /// How long the client waits for the server's Welcome, Resumed or SessionLost after its Hello. Default 10 seconds.
    /// Positive. Past it the socket is aborted and the loss is handled like any other (reconnect as the policy says).
    /// </summary>
    public TimeSpan HandshakeTimeout
    {
        get => _handshakeTimeout;
        set => _handshakeTimeout = OptionGuard.Positive(value);
    }
}
