using Lifeline.Session;
using Lifeline.Session.Store;
using Lifeline.Session.Wire;

namespace Lifeline.AspNetCore;

/// <summary>Options of session endpoints (<c>MapLifelineSession</c>, protocol <c>lifeline.v1</c>).</summary>
public sealed class LifelineSessionOptions
{
    private TimeSpan _resumeWindow = SessionProtocol.DefaultResumeWindow;
    private TimeSpan _handshakeTimeout = SessionProtocol.DefaultHandshakeTimeout;
    private int _inboxCapacity = 10_000;
    private long _inboxMaxBytes = 4 * 1024 * 1024;
    private TimeSpan _storeWriteTimeout = TimeSpan.FromSeconds(10);
    private int _stateMaxEntries = SessionStateBag.DefaultMaxEntries;
    private int _stateMaxBytes = SessionStateBag.DefaultMaxBytes;
    private int? _maxSessions;

    /// <summary>
    /// How long a session stays resumable after its socket goes. Default 2 minutes. Positive, at most 2^32-2 ms (the
    /// longest a timer waits; the Welcome's field takes it).
    /// </summary>
    public TimeSpan ResumeWindow
    {
        get => _resumeWindow;
        set => _resumeWindow = OptionGuard.Positive(value);
    }

    /// <summary>
    /// The most sessions this process holds at once (<see cref="LifelineSessionManager.Count"/>: connected, plain mode
    /// included, or waiting within their <see cref="ResumeWindow"/>); a new session beyond it is refused with 1013 and a
    /// retry hint. Resumes are always served. Default null: no limit. At least 1 when set.
    /// </summary>
    /// <remarks>
    /// A session outlives its socket by the resume window, so <see cref="LifelineServerOptions.MaxConnections"/> alone
    /// does not bound them: a client that opens a session and drops its socket, again and again, leaves one session (and
    /// its handler) per round for the whole window. Set both. Refusals are counted in
    /// <c>lifeline.server.sessions_refused</c> (their connections were accepted, so not in <c>lifeline.server.rejected</c>;
    /// the dashboard's rejects count both) and logged at Information (event 326).
    /// </remarks>
    public int? MaxSessions
    {
        get => _maxSessions;
        set => _maxSessions = OptionGuard.AtLeastOrNull(value, 1);
    }

    /// <summary>How long a new socket may take to send its Hello; past it the socket is closed with 4000. Default 10 seconds. Positive.</summary>
    public TimeSpan HandshakeTimeout
    {
        get => _handshakeTimeout;
        set => _handshakeTimeout = OptionGuard.Positive(value);
    }

    /// <summary>Bounds of each session's outbound replay buffer. Default: 10,000 messages, 1 MiB, 5 minutes, full mode Wait.</summary>
    public ReplayBufferOptions Replay { get; } = new();

    /// <summary>
    /// When the server acknowledges what its handler read. Default: after 1,024 messages, 256 KiB or 200 ms, whichever
    /// comes first. A client does not state its replay bounds, so keep these at or below half of what the clients'
    /// replay buffers hold (10,000 messages and 1 MiB for Lifeline's clients by default).
    /// </summary>
    public SessionAckOptions Ack { get; } = new();

    /// <summary>
    /// How many received messages wait for the handler to read them. Default 10,000. At least 1. When full (by count or
    /// by <see cref="InboxMaxBytes"/>), the session stops reading its socket (backpressure); nothing is acknowledged before
    /// the handler reads it.
    /// </summary>
    /// <remarks>
    /// Keep both bounds at or above what a client's replay buffer holds (Lifeline's clients default to 10,000 messages
    /// and 1 MiB): a client never has more unacknowledged, so its inbox then never fills and the Acks it sends behind its
    /// Data are always read. Below that, a client that sends ahead of its answers can stall a handler that waits for
    /// acks (a full outbound replay buffer in Wait mode) until the send times out.
    /// </remarks>
    public int InboxCapacity
    {
        get => _inboxCapacity;
        set => _inboxCapacity = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(InboxCapacity), value, "InboxCapacity must be at least 1.");
    }

    /// <summary>
    /// How many payload bytes of received messages wait for the handler. Default 4 MiB. At least 1. A single larger
    /// message is still taken when the inbox is empty. See <see cref="InboxCapacity"/>.
    /// </summary>
    public long InboxMaxBytes
    {
        get => _inboxMaxBytes;
        set => _inboxMaxBytes = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(InboxMaxBytes), value, "InboxMaxBytes must be at least 1.");
    }

    /// <summary>The most entries of a session's <see cref="SessionStateBag"/>. Default 32. At least 1.</summary>
    public int StateMaxEntries
    {
        get => _stateMaxEntries;
        set => _stateMaxEntries = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(StateMaxEntries), value, "StateMaxEntries must be at least 1.");
    }

    /// <summary>The most UTF-8 bytes of a session's <see cref="SessionStateBag"/>. Default 4 KiB. At least 1.</summary>
    public int StateMaxBytes
    {
        get => _stateMaxBytes;
        set => _stateMaxBytes = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(StateMaxBytes), value, "StateMaxBytes must be at least 1.");
    }

    /// <summary>
    /// Where the default in-memory store writes its sessions on a graceful drain and reads them back on start. Default
    /// null: <c>lifeline-sessions-{ApplicationName}.bin</c> in the temp directory. Ignored with another <see cref="ISessionStore"/>.
    /// </summary>
    public string? DrainFilePath { get; set; }

    /// <summary>
    /// With a shared store (Redis): how long a send waits for the store to confirm it before it throws
    /// <see cref="SessionStoreUnavailableException"/>. The message keeps its place and is delivered once the store is
    /// back. Default 10 seconds. Positive.
    /// </summary>
    public TimeSpan StoreWriteTimeout
    {
        get => _storeWriteTimeout;
        set => _storeWriteTimeout = OptionGuard.Positive(value);
    }

    /// <summary>Whether a graceful drain saves sessions (and the start loads them). Default true.</summary>
    public bool PersistOnDrain { get; set; } = true;
}
