using Lifeline.Session;
using Lifeline.Session.Store;

namespace Lifeline.Redis;

/// <summary>
/// A session's outbound log and cursors in Redis, written only by the node holding the session's lease. It is what
/// makes "in Redis before it counts as done" possible: a server appends what the application sent before handing it to
/// the socket, and records what it delivered before acknowledging it, so a node killed without a drain loses nothing a
/// resume on another node can replay.
/// </summary>
/// <remarks>
/// Each call is one Redis round trip (one script), however many messages it carries: batch messages sent close
/// together into one <see cref="AppendAsync"/>. Calls for different sessions are pipelined on the shared connection.
/// Every call is idempotent, so retrying one that failed with <see cref="SessionStoreUnavailableException"/> is safe.
/// Thread-safe; calls for one session should be issued in order (one writer per session).
/// </remarks>
public interface IRedisSessionLog
{
    /// <summary>
    /// Appends outbound messages with consecutive sequences. Messages already in the log (a retry) are skipped; the
    /// first message of a session's log fixes where it starts.
    /// </summary>
    /// <returns>The sequence the next appended message must have.</returns>
    /// <exception cref="SessionFencedException">Another node owns the session now.</exception>
    /// <exception cref="Session.Store.SessionStoreFullException">The log would pass its bounds (messages or bytes).</exception>
    /// <exception cref="ArgumentException">The messages are empty, too many, not consecutive, or leave a gap after the log.</exception>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    ValueTask<long> AppendAsync(RedisSessionLease lease, IReadOnlyList<SessionMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records the peer's acknowledgement of outbound messages (dropping them from the log) and, optionally, the last
    /// inbound sequence delivered to the application. Cursors only move forward; lower values are ignored.
    /// </summary>
    /// <param name="lease">The lease.</param>
    /// <param name="outboundAcknowledged">The peer's cumulative ack; null leaves it.</param>
    /// <param name="inboundDelivered">The last inbound sequence handed to the application; null leaves it.</param>
    /// <param name="cancellationToken">Cancels the wait (the write may still happen).</param>
    /// <exception cref="SessionFencedException">Another node owns the session now.</exception>
    /// <exception cref="ArgumentException">The ack is beyond the last appended message.</exception>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    ValueTask<SessionLogState> AcknowledgeAsync(RedisSessionLease lease, long? outboundAcknowledged, long? inboundDelivered = null, CancellationToken cancellationToken = default);

    /// <summary>Reads a session's log and cursors at one instant (for a resume); null when it has none.</summary>
    /// <exception cref="SessionStoreUnavailableException">Redis did not answer in time.</exception>
    ValueTask<SessionLogState?> ReadLogAsync(SessionId id, CancellationToken cancellationToken = default);
}

/// <summary>A session's log as stored: cursors, the owner's epoch and the unacknowledged outbound messages.</summary>
/// <param name="NextOutboundSequence">The sequence the next appended message gets.</param>
/// <param name="OutboundAcknowledged">The peer's last acknowledgement recorded.</param>
/// <param name="LastInboundDelivered">The last inbound sequence recorded as delivered to the application.</param>
/// <param name="Epoch">The fencing epoch of the latest owner; 0 when none is known.</param>
/// <param name="Unacknowledged">The messages after <paramref name="OutboundAcknowledged"/>, in order; empty from <see cref="IRedisSessionLog.AcknowledgeAsync"/>.</param>
public sealed record SessionLogState(long NextOutboundSequence, long OutboundAcknowledged, long LastInboundDelivered, long Epoch, IReadOnlyList<SessionMessage> Unacknowledged);
