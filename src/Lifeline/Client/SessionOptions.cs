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

    /// <summary>When received messages are acknowledged. Default: after 64 messages, 64 KiB or 200 ms.</summary>
    public SessionAckOptions Ack { get; } = new();

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
