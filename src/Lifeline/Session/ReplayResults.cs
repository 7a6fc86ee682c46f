using Lifeline.Session.Wire;

namespace Lifeline.Session;

/// <summary>What became of an append to the replay buffer.</summary>
public enum ReplayAppendStatus
{
    /// <summary>The message is in the buffer under <see cref="ReplayAppendResult.Sequence"/>; frame and send it.</summary>
    Appended,

    /// <summary>The session has ended (<see cref="ReplayBuffer.End"/>); the message was not kept and must not be sent.</summary>
    SessionEnded,
}

/// <summary>The outcome of <see cref="ReplayBuffer.AppendAsync"/>.</summary>
/// <param name="Status">Appended, or the session ended.</param>
/// <param name="Sequence">The message's sequence number when appended; 0 otherwise.</param>
/// <param name="Acknowledged">
/// Only when the caller asked for it: completes with true when the peer acknowledges the message, with false when
/// the session ends first (the message is then unconfirmed). Null otherwise, so the common path allocates nothing.
/// </param>
public readonly record struct ReplayAppendResult(ReplayAppendStatus Status, long Sequence, Task<bool>? Acknowledged);

/// <summary>What an acknowledgement did.</summary>
public enum ReplayAckStatus
{
    /// <summary>Messages were released.</summary>
    Advanced,

    /// <summary>Nothing new: the ack is not above the previous one (or the session has ended). Ignored.</summary>
    Unchanged,

    /// <summary>The ack is above the last sequence sent: a protocol error (close with 1002). Nothing changed.</summary>
    BeyondSent,
}

/// <summary>The outcome of <see cref="ReplayBuffer.Acknowledge"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Released">The sequences released (acknowledged) by this ack; callers can notify per message from it.</param>
/// <param name="ReleasedBytes">The payload bytes released.</param>
public readonly record struct ReplayAckResult(ReplayAckStatus Status, SequenceRange Released, long ReleasedBytes);

/// <summary>Whether a replay can start from the requested point.</summary>
public enum ReplayStatus
{
    /// <summary>The lease holds every message after the requested sequence (possibly none).</summary>
    Ready,

    /// <summary>Messages after the requested sequence are no longer held: answer SessionLost (replay unavailable).</summary>
    Unavailable,

    /// <summary>The requested sequence is above the last sequence sent: a protocol error (close with 1002).</summary>
    BeyondSent,

    /// <summary>The session has ended.</summary>
    Ended,
}

/// <summary>A message to resend: its original sequence, type and payload.</summary>
/// <param name="Sequence">The sequence number.</param>
/// <param name="IsText">Whether the payload is text.</param>
/// <param name="Payload">The payload; valid until the <see cref="ReplayLease"/> that gave it is disposed.</param>
public readonly record struct ReplayFrame(long Sequence, bool IsText, ReadOnlyMemory<byte> Payload);

/// <summary>Why a replay buffer ended, and the messages that will never be acknowledged.</summary>
/// <param name="Reason">Why the session ended.</param>
/// <param name="Unacknowledged">The messages sent but never acknowledged (unconfirmed: the peer may or may not have handled them).</param>
public readonly record struct ReplayBufferEnd(SessionLostReason Reason, SequenceRange Unacknowledged);
