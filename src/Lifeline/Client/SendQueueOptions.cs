namespace Lifeline.Client;

/// <summary>
/// Bounds and behaviour of the queue that holds sends while the client is not connected, and while connected the sends
/// that wait behind others (a send with a cancellable token, a write still under way, in session mode a full replay
/// buffer). Its bounds and full mode apply to all of them; the default mode waits for room.
/// </summary>
public sealed class SendQueueOptions
{
    private int _maxMessages = 1_000;
    private long _maxBytes = 1024 * 1024;
    private TimeSpan? _maxAge = TimeSpan.FromSeconds(30);
    private bool _maxAgeSet;

    /// <summary>Whether sends made while disconnected are queued. Default true. When false they throw.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The most messages held. Default 1,000. At least 1.</summary>
    public int MaxMessages
    {
        get => _maxMessages;
        set => _maxMessages = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>The most payload bytes held. Default 1 MiB. At least 1.</summary>
    public long MaxBytes
    {
        get => _maxBytes;
        set => _maxBytes = OptionGuard.AtLeast(value, 1L);
    }

    /// <summary>What a send does when the queue is full. Default <see cref="SendQueueFullMode.Wait"/>.</summary>
    public SendQueueFullMode FullMode { get; set; } = SendQueueFullMode.Wait;

    /// <summary>
    /// Messages older than this when their turn comes are dropped and counted, not sent late. Default 30 s in plain
    /// mode. In session mode, unless set here, queued messages never go stale: a session promises that nothing is
    /// dropped unseen, so they wait for the resume however long the outage (within the queue's bounds).
    /// Null means messages never go stale (the user chose to send them late).
    /// </summary>
    public TimeSpan? MaxAge
    {
        get => _maxAge;
        set
        {
            _maxAge = OptionGuard.PositiveOrNull(value, "never stale");
            _maxAgeSet = true;
        }
    }

    /// <summary>The age past which a queued message is dropped: <see cref="MaxAge"/>, or none in session mode unless it was set.</summary>
    internal TimeSpan? MaxAgeFor(bool session) => session && !_maxAgeSet ? null : _maxAge;
}
