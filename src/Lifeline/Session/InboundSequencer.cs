namespace Lifeline.Session;

/// <summary>When a receiver acknowledges: after so many messages, bytes or time, whichever comes first.</summary>
public sealed class SessionAckOptions
{
    private int _maxMessages = 1024;
    private long _maxBytes = 256 * 1024;
    private TimeSpan _maxDelay = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// An ack is due once this many delivered messages are unacknowledged. Default 1,024 (4,096 in a client's
    /// <c>SessionOptions.Ack</c>). At least 1. Every ack is a write (a system call and a TCP segment) that the peer must
    /// read, so small messages in a flood are acknowledged in large batches; the peer's replay buffer (10,000 messages
    /// and 1 MiB by default) must hold twice this.
    /// </summary>
    public int MaxMessages
    {
        get => _maxMessages;
        set => _maxMessages = OptionGuard.AtLeast(value, 1);
    }

    /// <summary>An ack is due once this many delivered payload bytes are unacknowledged. Default 256 KiB. At least 1.</summary>
    public long MaxBytes
    {
        get => _maxBytes;
        set => _maxBytes = OptionGuard.AtLeast(value, 1L);
    }

    /// <summary>
    /// An ack is due this long after the first unacknowledged delivery. Default 200 ms. Positive. Under the system clock
    /// it is measured with the millisecond tick count, so it may run late by up to one of its ticks (4 ms on Linux).
    /// </summary>
    public TimeSpan MaxDelay
    {
        get => _maxDelay;
        set => _maxDelay = OptionGuard.Positive(value);
    }
}

/// <summary>What to do with a received Data frame.</summary>
public enum InboundDecision
{
    /// <summary>The next in order: hand it to the application.</summary>
    Deliver,

    /// <summary>Already delivered (normal after a resume): drop it silently; it is counted.</summary>
    Duplicate,

    /// <summary>A sequence was skipped: a protocol error (close with 1002). Nothing changed.</summary>
    Gap,

    /// <summary>
    /// The cursor was ended (<see cref="InboundSequencer.End"/>): this side has ended the session, so the frame belongs to
    /// a session that is over. Drop it: it is not delivered and nothing changed.
    /// </summary>
    Ended,
}

/// <summary>What a delivery asks of whoever sends Ack frames.</summary>
internal enum AckTrigger
{
    /// <summary>Nothing new: an ack is not due, and the loop that sends them already knows when to look.</summary>
    None,

    /// <summary>The first unacknowledged delivery while the ack loop waits without a timeout: its delay starts now.</summary>
    WakeLoop,

    /// <summary>An ack is due now, by count or bytes.</summary>
    DueNow,
}

/// <summary>
/// The inbound cursor of a session: delivers messages once and in order by sequence number, drops duplicates,
/// reports gaps, and decides when an acknowledgement is due (batched by <see cref="SessionAckOptions"/>).
/// </summary>
/// <remarks>
/// <para>
/// Call <see cref="Accept(long, int)"/> when a message is handed to the application (acknowledge what the application got,
/// not what reached the socket). Every outgoing Data frame carries <see cref="TakeAck"/>; when no Data goes out,
/// send an Ack frame when <see cref="IsAckDue"/> becomes true, checking again after <see cref="AckDueIn"/>.
/// </para>
/// <para>Thread-safe: the receive loop and a sender or timer may call it concurrently.</para>
/// </remarks>
public sealed class InboundSequencer
{
    private readonly SessionAckOptions _options;
    private readonly CoarseClock _clock;
    private readonly ShortLock _lock = new();
    private long _lastDelivered;
    private long _lastAcknowledged;
    private long _duplicates;
    private int _pendingMessages;
    private long _pendingBytes;
    private long _firstPendingTimestamp;
    private bool _ended;
    private bool _ackLoopParked = true;
    private bool _ackLoopLastParked; // the last NextAckLoopWait told the loop to park
    private int _held; // the last deliveries, held by the receiver past its buffer's bounds: not acknowledged yet
    private int _peerHalfMessages = int.MaxValue;
    private long _peerHalfBytes = long.MaxValue;

    /// <summary>Creates a cursor.</summary>
    /// <param name="options">The ack policy; read on every call, so later changes apply.</param>
    /// <param name="timeProvider">The clock for the ack delay. Default <see cref="TimeProvider.System"/>.</param>
    /// <param name="lastDelivered">The last sequence already delivered (0 for a new session; a restored session's cursor).</param>
    public InboundSequencer(SessionAckOptions options, TimeProvider? timeProvider = null, long lastDelivered = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(lastDelivered);
        _options = options;
        _clock = new CoarseClock(timeProvider ?? TimeProvider.System);
        _lastDelivered = lastDelivered;
        _lastAcknowledged = lastDelivered;
    }

    // The ack triggers in force: the options, lowered to half of what the peer said its replay buffer holds.
    private int MaxMessages => Math.Min(_options.MaxMessages, _peerHalfMessages);

    private long MaxBytes => Math.Min(_options.MaxBytes, _peerHalfBytes);

    /// <summary>
    /// The peer stated its replay bounds (the server does in Welcome): acknowledge before half of either is used, so a
    /// sender never waits for room in its buffer while acks are merely batched.
    /// </summary>
    internal void LimitToPeerReplay(int maxMessages, long maxBytes)
    {
        using (_lock.Enter())
        {
            _peerHalfMessages = Math.Max(1, maxMessages / 2);
            _peerHalfBytes = Math.Max(1, maxBytes / 2);
        }
    }

    /// <summary>
    /// The last sequence delivered: what Resumed states as "last received". A client's resume Hello states
    /// <see cref="TakeAck"/> instead, which is lower while deliveries are held (those then come again as duplicates).
    /// </summary>
    public long LastDelivered
    {
        get
        {
            using (_lock.Enter())
            {
                return _lastDelivered;
            }
        }
    }

    /// <summary>The last sequence acknowledged to the peer.</summary>
    public long LastAcknowledged
    {
        get
        {
            using (_lock.Enter())
            {
                return _lastAcknowledged;
            }
        }
    }

    /// <summary>How many duplicates were dropped.</summary>
    public long DuplicatesDropped
    {
        get
        {
            using (_lock.Enter())
            {
                return _duplicates;
            }
        }
    }

    /// <summary>Whether an acknowledgement should go out now (count, bytes or delay reached).</summary>
    public bool IsAckDue
    {
        get
        {
            using (_lock.Enter())
            {
                return _pendingMessages > 0 && (_pendingMessages >= MaxMessages
                    || _pendingBytes >= MaxBytes
                    || _clock.Since(_firstPendingTimestamp) >= _options.MaxDelay);
            }
        }
    }

    /// <summary>How long until an ack is due by delay: null when nothing is unacknowledged, zero when due now.</summary>
    public TimeSpan? AckDueIn
    {
        get
        {
            using (_lock.Enter())
            {
                return _pendingMessages == 0 ? null : DueInLocked();
            }
        }
    }

    // Something is pending: how long until an ack is due (zero when due now by count, bytes or delay).
    private TimeSpan DueInLocked()
    {
        if (_pendingMessages >= MaxMessages || _pendingBytes >= MaxBytes)
        {
            return TimeSpan.Zero;
        }

        // Rounded up to whole milliseconds, as timers wait: a remainder below one would be a wait of zero, and the ack loop
        // would go round without waiting until the clock moved (a tick of the coarse clock: 4 ms on Linux, ~16 on Windows).
        var left = _options.MaxDelay - _clock.Since(_firstPendingTimestamp);
        return left > TimeSpan.Zero ? TimeSpan.FromMilliseconds(Math.Ceiling(left.TotalMilliseconds)) : TimeSpan.Zero;
    }

    /// <summary>Classifies a received Data frame and, when it is next in order, records it as delivered.</summary>
    /// <param name="sequence">The frame's sequence number.</param>
    /// <param name="payloadLength">Its payload length, for the byte trigger of the ack policy.</param>
    public InboundDecision Accept(long sequence, int payloadLength) => Accept(sequence, payloadLength, out AckTrigger _);

    /// <summary>
    /// <see cref="Accept(long, int)"/>, also saying whether the ack loop must look again now: this delivery is the first
    /// unacknowledged one while the loop waits without a timeout (the delay starts), or makes an ack due by count or bytes.
    /// Between those, waking it would only make it wait again.
    /// </summary>
    internal InboundDecision Accept(long sequence, int payloadLength, out AckTrigger trigger) => Accept(sequence, payloadLength, hold: false, out trigger);

    /// <summary>
    /// <see cref="Accept(long, int, out AckTrigger)"/>; with <paramref name="hold"/> the message is delivered (the cursor
    /// moves: it is the application's, and a copy the peer resends is a duplicate) but not acknowledged until
    /// <see cref="ReleaseHeld"/>: a receiver reading past its buffer's bounds (to reach the acks behind the Data) keeps
    /// the sender within its replay buffer. A resume states the acknowledged position, so held messages come again
    /// and are dropped as duplicates. Held messages are always the latest deliveries.
    /// </summary>
    internal InboundDecision Accept(long sequence, int payloadLength, bool hold, out AckTrigger trigger)
    {
        trigger = AckTrigger.None;
        using (_lock.Enter())
        {
            if (_ended)
            {
                return InboundDecision.Ended;
            }

            if (sequence <= _lastDelivered)
            {
                _duplicates++;
                return InboundDecision.Duplicate;
            }

            if (sequence != _lastDelivered + 1)
            {
                return InboundDecision.Gap;
            }

            _lastDelivered = sequence;
            if (hold)
            {
                _held++;
            }
            else
            {
                trigger = CountAckableLocked(payloadLength);
            }

            return InboundDecision.Deliver;
        }
    }

    /// <summary>
    /// Ends the cursor when this side ends the session: every later <see cref="Accept(long, int)"/> answers
    /// <see cref="InboundDecision.Ended"/> and delivers nothing, so the last delivered it returns is final. That is the
    /// "last received" a SessionLost frame states: a frame a receive loop was still taking as the session ended is either
    /// counted in it or not delivered, never delivered without being counted.
    /// </summary>
    /// <returns>The last sequence delivered, which no longer changes.</returns>
    public long End()
    {
        using (_lock.Enter())
        {
            _ended = true;
            return _lastDelivered;
        }
    }

    /// <summary>The oldest held delivery may be acknowledged now (the application took a message); what the ack loop must do.</summary>
    internal AckTrigger ReleaseHeld(int payloadLength)
    {
        using (_lock.Enter())
        {
            if (_held == 0)
            {
                return AckTrigger.None;
            }

            _held--;
            return CountAckableLocked(payloadLength);
        }
    }

    // One more delivery may be acknowledged: counts it toward the ack triggers.
    private AckTrigger CountAckableLocked(int payloadLength)
    {
        var trigger = AckTrigger.None;
        var first = _pendingMessages++ == 0;
        if (first)
        {
            _firstPendingTimestamp = _clock.Now();
        }

        _pendingBytes += payloadLength;
        if (_pendingMessages == MaxMessages || (_pendingBytes >= MaxBytes && _pendingBytes - payloadLength < MaxBytes))
        {
            trigger = AckTrigger.DueNow;
        }
        else if (first && _ackLoopParked)
        {
            trigger = AckTrigger.WakeLoop;
        }

        // Only a wake-up ends the loop's parking: an ack due now may be sent by whoever found it due, without waking
        // the loop, which then still waits for the next delivery to wake it.
        _ackLoopParked &= trigger != AckTrigger.WakeLoop;
        return trigger;
    }

    /// <summary>
    /// For the loop that sends Ack frames: how long to wait for the next one to fall due (zero: due now). Null: nothing
    /// is unacknowledged, so wait for a wake-up; the next delivery then reports <see cref="AckTrigger.WakeLoop"/>. Right after the loop
    /// sent an ack (<paramref name="justAcknowledged"/>) it waits <see cref="SessionAckOptions.MaxDelay"/> instead, and
    /// a delivery meanwhile need not wake it: under a steady flow that halves the wake-ups (one per batch, by count). So
    /// it does when a delivery woke it from parking but an outgoing Data frame carried the ack before it ran (request and
    /// response): parking again at once would wake it for every message.
    /// </summary>
    internal TimeSpan? NextAckLoopWait(bool justAcknowledged)
    {
        using (_lock.Enter())
        {
            var wokenFromPark = _ackLoopLastParked;
            _ackLoopParked = false;
            _ackLoopLastParked = false;
            if (_pendingMessages == 0)
            {
                var waitTheDelay = justAcknowledged || wokenFromPark; // traffic flows: look again after the delay
                _ackLoopParked = _ackLoopLastParked = !waitTheDelay;
                return waitTheDelay ? _options.MaxDelay : null;
            }

            return DueInLocked();
        }
    }

    /// <summary>
    /// The ack to send now (<see cref="LastDelivered"/>, less any held deliveries), recorded as sent: call it for every outgoing Data frame
    /// (piggy-backed) and for each Ack frame. Resets the ack triggers.
    /// </summary>
    public long TakeAck()
    {
        using (_lock.Enter())
        {
            _lastAcknowledged = _lastDelivered - _held;
            _pendingMessages = 0;
            _pendingBytes = 0;
            return _lastAcknowledged;
        }
    }
}
