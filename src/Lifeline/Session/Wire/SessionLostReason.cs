namespace Lifeline.Session.Wire;

/// <summary>Why a session could not continue (the reason byte of a SessionLost frame).</summary>
public enum SessionLostReason : byte
{
    /// <summary>1: the server has no such session: its window expired, or the server lost it (a crash, a restart without a drain file).</summary>
    NotFound = 1,

    /// <summary>2: the sender no longer holds messages the peer needs (they aged out or were discarded).</summary>
    ReplayUnavailable = 2,

    /// <summary>3: the sender's replay buffer was full and its full mode is "end the session".</summary>
    BufferFull = 3,

    /// <summary>4: the sender's replay buffer held a message unacknowledged for longer than its age limit.</summary>
    Expired = 4,
}
