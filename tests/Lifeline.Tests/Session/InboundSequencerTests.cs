using Lifeline.Session;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.Tests.Session;

public class InboundSequencerTests
{
    private static InboundSequencer Create(FakeTimeProvider? time = null, int maxMessages = 64, long maxBytes = 65_536, int delayMs = 200, long lastDelivered = 0) =>
        new(new SessionAckOptions { MaxMessages = maxMessages, MaxBytes = maxBytes, MaxDelay = TimeSpan.FromMilliseconds(delayMs) }, time ?? new FakeTimeProvider(), lastDelivered);

    [Fact]
    public void Accept_InOrder_DeliversAndAdvances()
    {
        var sequencer = Create();

        Assert.Equal(InboundDecision.Deliver, sequencer.Accept(1, 10));
        Assert.Equal(InboundDecision.Deliver, sequencer.Accept(2, 10));

        Assert.Equal(2, sequencer.LastDelivered);
    }

    [Fact]
    public void Accept_AlreadyDelivered_DropsSilentlyAndCounts()
    {
        var sequencer = Create();
        sequencer.Accept(1, 0);
        sequencer.Accept(2, 0);

        Assert.Equal(InboundDecision.Duplicate, sequencer.Accept(1, 0));
        Assert.Equal(InboundDecision.Duplicate, sequencer.Accept(2, 0));

        Assert.Equal(2, sequencer.DuplicatesDropped);
        Assert.Equal(2, sequencer.LastDelivered);
    }

    [Fact]
    public void Accept_SkippedSequence_ReportsGapAndChangesNothing()
    {
        var sequencer = Create();
        sequencer.Accept(1, 0);

        Assert.Equal(InboundDecision.Gap, sequencer.Accept(3, 0));

        Assert.Equal(1, sequencer.LastDelivered);
        Assert.Equal(InboundDecision.Deliver, sequencer.Accept(2, 0));
    }

    [Fact]
    public void Accept_RestoredCursor_ContinuesAfterIt()
    {
        var sequencer = Create(lastDelivered: 41);

        Assert.Equal(InboundDecision.Duplicate, sequencer.Accept(41, 0));
        Assert.Equal(InboundDecision.Deliver, sequencer.Accept(42, 0));
        Assert.Equal(41, sequencer.LastAcknowledged);
    }

    [Fact]
    public void IsAckDue_AfterMaxMessages_BecomesTrue()
    {
        var sequencer = Create(maxMessages: 3);
        sequencer.Accept(1, 1);
        sequencer.Accept(2, 1);
        Assert.False(sequencer.IsAckDue);

        sequencer.Accept(3, 1);

        Assert.True(sequencer.IsAckDue);
        Assert.Equal(TimeSpan.Zero, sequencer.AckDueIn);
    }

    [Fact]
    public void IsAckDue_AfterMaxBytes_BecomesTrue()
    {
        var sequencer = Create(maxBytes: 100);
        sequencer.Accept(1, 60);
        Assert.False(sequencer.IsAckDue);

        sequencer.Accept(2, 40);

        Assert.True(sequencer.IsAckDue);
    }

    [Fact]
    public void AckDueIn_LessThanAMillisecondLeft_IsRoundedUpToOne()
    {
        // Timers wait whole milliseconds: a remainder below one would be a wait of zero, and the ack loop would go round
        // without waiting until the clock moved (a tick of the system's coarse clock: 4 ms on Linux, about 16 on Windows).
        var time = new FakeTimeProvider();
        var sequencer = new InboundSequencer(new SessionAckOptions { MaxDelay = TimeSpan.FromMilliseconds(200.5) }, time);
        sequencer.Accept(1, 1);
        time.Advance(TimeSpan.FromMilliseconds(200));

        Assert.False(sequencer.IsAckDue);
        Assert.Equal(TimeSpan.FromMilliseconds(1), sequencer.AckDueIn);
        Assert.Equal(TimeSpan.FromMilliseconds(1), sequencer.NextAckLoopWait(justAcknowledged: false));

        time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.True(sequencer.IsAckDue);
        Assert.Equal(TimeSpan.Zero, sequencer.AckDueIn);
    }

    [Fact]
    public void IsAckDue_AfterMaxDelaySinceFirstUnacknowledged_BecomesTrue()
    {
        var time = new FakeTimeProvider();
        var sequencer = Create(time, delayMs: 200);
        Assert.Null(sequencer.AckDueIn);
        sequencer.Accept(1, 1);
        time.Advance(TimeSpan.FromMilliseconds(150));
        sequencer.Accept(2, 1);

        Assert.False(sequencer.IsAckDue);
        Assert.Equal(TimeSpan.FromMilliseconds(50), sequencer.AckDueIn);

        time.Advance(TimeSpan.FromMilliseconds(50));

        Assert.True(sequencer.IsAckDue);
        Assert.Equal(TimeSpan.Zero, sequencer.AckDueIn);
    }

    [Fact]
    public void TakeAck_ReturnsLastDeliveredAndResetsTheTriggers()
    {
        var time = new FakeTimeProvider();
        var sequencer = Create(time, maxMessages: 2);
        sequencer.Accept(1, 1);
        sequencer.Accept(2, 1);

        Assert.Equal(2, sequencer.TakeAck());

        Assert.False(sequencer.IsAckDue);
        Assert.Null(sequencer.AckDueIn);
        Assert.Equal(2, sequencer.LastAcknowledged);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(sequencer.IsAckDue); // nothing new to acknowledge
    }

    [Fact]
    public void TakeAck_DuplicatesAndGaps_DoNotMakeAnAckDue()
    {
        var time = new FakeTimeProvider();
        var sequencer = Create(time, maxMessages: 1);
        sequencer.Accept(1, 1);
        sequencer.TakeAck();

        sequencer.Accept(1, 1);
        sequencer.Accept(5, 1);
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.False(sequencer.IsAckDue);
    }

    [Theory]
    [InlineData(10_000, 4096)] // a server with default bounds: the client's own count, below half of them
    [InlineData(3_000, 1500)] // a server stating smaller bounds: half of what it holds
    public void ClientDefaults_AckSmallMessagesByTheirOwnCount_OrBeforeHalfTheServersBuffer(int serverReplayMessages, int expectedFirstDue)
    {
        // A client's acks are batched more than a server's (each is a frame the server must read), but a server must
        // never have to wait for one: the count in force stays below half of the replay buffer its Welcome states.
        var serverReplay = new ReplayBufferOptions { MaxMessages = serverReplayMessages };
        var sequencer = new InboundSequencer(new Lifeline.Client.SessionOptions().Ack, new FakeTimeProvider());
        sequencer.LimitToPeerReplay(serverReplay.MaxMessages, serverReplay.MaxBytes);

        var firstDue = 0;
        for (var sequence = 1; sequence <= serverReplay.MaxMessages && firstDue == 0; sequence++)
        {
            sequencer.Accept(sequence, 32, out AckTrigger trigger);
            firstDue = trigger == AckTrigger.DueNow ? sequence : 0;
        }

        Assert.Equal(expectedFirstDue, firstDue);
        Assert.Equal(1024, new SessionAckOptions().MaxMessages); // what a server acknowledges by
    }

    [Fact]
    public void Options_OutOfRange_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SessionAckOptions { MaxMessages = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SessionAckOptions { MaxBytes = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SessionAckOptions { MaxDelay = TimeSpan.Zero });
    }

    [Fact]
    public void Accept_Trigger_WakesTheParkedLoopForTheFirstPendingAndSaysWhenAnAckIsDue()
    {
        var sequencer = Create(maxMessages: 3);
        var triggers = new List<AckTrigger>();

        for (var sequence = 1; sequence <= 4; sequence++)
        {
            Assert.Equal(InboundDecision.Deliver, sequencer.Accept(sequence, 10, out AckTrigger trigger));
            triggers.Add(trigger);
        }

        Assert.Equal([AckTrigger.WakeLoop, AckTrigger.None, AckTrigger.DueNow, AckTrigger.None], triggers);
    }

    [Fact]
    public void Accept_DueNowWhileTheLoopIsParked_TheLoopStaysParked_SoTheNextDeliveryWakesIt()
    {
        // A delivery that makes an ack due by itself (here by bytes) is acknowledged by whoever found it due, without
        // waking the parked loop. The loop must still count as parked: the next small delivery has to wake it, or that
        // message waits for an ack that only a later due-now ack or Data frame would carry.
        var sequencer = Create(maxMessages: 1000, maxBytes: 100);
        Assert.Null(sequencer.NextAckLoopWait(justAcknowledged: false)); // idle: parked

        sequencer.Accept(1, 500, out AckTrigger big);
        Assert.Equal(AckTrigger.DueNow, big);
        sequencer.TakeAck(); // the reader sent it inline
        sequencer.Accept(2, 10, out AckTrigger small);
        Assert.Equal(AckTrigger.WakeLoop, small);
    }

    [Fact]
    public void NextAckLoopWait_WokenFromParkButTheAckWentPiggyBacked_WaitsTheDelayInsteadOfParkingAgain()
    {
        // Request and response: each delivery wakes the parked loop, and the answer carries the ack before the loop
        // runs. Parking again at once would wake the loop (a thread hop and an allocation) for every message.
        var sequencer = Create(maxMessages: 1000);
        Assert.Null(sequencer.NextAckLoopWait(justAcknowledged: false)); // idle: the loop parks
        var triggers = new List<AckTrigger>();
        for (var sequence = 1; sequence <= 5; sequence++)
        {
            sequencer.Accept(sequence, 10, out AckTrigger trigger);
            triggers.Add(trigger);
            sequencer.TakeAck(); // the answer went out with the ack
            if (trigger == AckTrigger.WakeLoop)
            {
                Assert.Equal(TimeSpan.FromMilliseconds(200), sequencer.NextAckLoopWait(justAcknowledged: false));
            }
        }

        Assert.Equal([AckTrigger.WakeLoop, AckTrigger.None, AckTrigger.None, AckTrigger.None, AckTrigger.None], triggers);
        Assert.Null(sequencer.NextAckLoopWait(justAcknowledged: false)); // the delay passed with nothing pending: it parks
    }

    [Fact]
    public void NextAckLoopWait_AfterAnAck_WaitsTheDelayAndTheNextDeliveryNeedNotWakeIt()
    {
        var sequencer = Create(maxMessages: 3);
        sequencer.Accept(1, 10, out AckTrigger _);
        sequencer.TakeAck();

        Assert.Equal(TimeSpan.FromMilliseconds(200), sequencer.NextAckLoopWait(justAcknowledged: true));
        sequencer.Accept(2, 10, out AckTrigger whileTimed);
        Assert.Equal(AckTrigger.None, whileTimed);

        sequencer.TakeAck();
        Assert.Null(sequencer.NextAckLoopWait(justAcknowledged: false)); // nothing pending: the loop parks
        sequencer.Accept(3, 10, out AckTrigger whileParked);
        Assert.Equal(AckTrigger.WakeLoop, whileParked);
        Assert.Equal(TimeSpan.FromMilliseconds(200), sequencer.NextAckLoopWait(justAcknowledged: false));
    }

    [Fact]
    public void Accept_Trigger_DueNowWhenTheByteTriggerIsCrossed()
    {
        var sequencer = Create(maxBytes: 100);

        sequencer.Accept(1, 10, out AckTrigger first);
        sequencer.Accept(2, 50, out AckTrigger below);
        sequencer.Accept(3, 50, out AckTrigger crossing);
        sequencer.Accept(4, 50, out AckTrigger beyond);

        Assert.Equal((AckTrigger.WakeLoop, AckTrigger.None, AckTrigger.DueNow, AckTrigger.None), (first, below, crossing, beyond));
    }

    [Fact]
    public void LimitToPeerReplay_AnAckFallsDueAtHalfThePeersBounds()
    {
        var sequencer = Create(maxMessages: 1024, maxBytes: 1 << 20);
        sequencer.LimitToPeerReplay(maxMessages: 100, maxBytes: 1000);

        var dueAt = new List<long>();
        for (var sequence = 1; sequence <= 60; sequence++)
        {
            sequencer.Accept(sequence, 1, out AckTrigger trigger);
            if (trigger == AckTrigger.DueNow)
            {
                dueAt.Add(sequence);
            }
        }

        Assert.Equal([50L], dueAt);
        Assert.True(sequencer.IsAckDue);
        sequencer.TakeAck();
        sequencer.Accept(61, 600, out AckTrigger bytes);
        Assert.Equal(AckTrigger.DueNow, bytes); // 600 of 1000 bytes: past half
    }

    [Fact]
    public void Accept_Held_MovesTheCursorButIsNotAcknowledgedUntilReleased()
    {
        var sequencer = Create(maxMessages: 2);
        sequencer.Accept(1, 10, hold: false, out _);
        sequencer.Accept(2, 10, hold: true, out AckTrigger held);
        sequencer.Accept(3, 10, hold: true, out _);

        Assert.Equal(AckTrigger.None, held); // held deliveries do not count toward an ack
        Assert.Equal(3, sequencer.LastDelivered); // copies the peer sends again are duplicates
        Assert.Equal(1, sequencer.TakeAck());

        Assert.NotEqual(AckTrigger.DueNow, sequencer.ReleaseHeld(10)); // one of two
        Assert.True(sequencer.IsAckDue is false && sequencer.AckDueIn is not null); // counted: due by delay from now
        Assert.Equal(AckTrigger.DueNow, sequencer.ReleaseHeld(10)); // the second reaches MaxMessages
        Assert.Equal(3, sequencer.TakeAck());
        Assert.Equal(AckTrigger.None, sequencer.ReleaseHeld(10)); // nothing held any more
        Assert.Equal(3, sequencer.TakeAck());
    }

    [Fact]
    public void End_ReturnsTheLastDelivered_AndLaterFramesAreDroppedWithoutChangingIt()
    {
        var sequencer = Create();
        sequencer.Accept(1, 10);
        sequencer.Accept(2, 10);

        Assert.Equal(2, sequencer.End());

        Assert.Equal(InboundDecision.Ended, sequencer.Accept(3, 10)); // the next in order: not delivered
        Assert.Equal(InboundDecision.Ended, sequencer.Accept(2, 10));
        Assert.Equal(InboundDecision.Ended, sequencer.Accept(9, 10));
        Assert.Equal(2, sequencer.LastDelivered);
        Assert.Equal(0, sequencer.DuplicatesDropped);
        Assert.Equal(2, sequencer.End()); // ending again changes nothing
    }

    [Fact]
    public async Task End_WhileAnotherThreadAccepts_ReturnsExactlyWhatWasDelivered()
    {
        // What a SessionLost frame states as "last received" must be what the receive loop delivered: a frame taken at the
        // moment the session ends is either counted or not delivered. Bounded: 50 rounds of at most 100,000 frames.
        for (var round = 0; round < 50; round++)
        {
            var sequencer = Create(maxMessages: int.MaxValue, maxBytes: long.MaxValue);
            using var started = new ManualResetEventSlim();
            long delivered = 0;
            var receiver = Task.Run(() =>
            {
                started.Set();
                for (var sequence = 1L; sequence <= 100_000; sequence++)
                {
                    if (sequencer.Accept(sequence, 1) != InboundDecision.Deliver)
                    {
                        return;
                    }

                    delivered = sequence;
                }
            });
            started.Wait(TimeSpan.FromSeconds(30));
            Thread.SpinWait(round * 1_000);

            var last = sequencer.End();

            await receiver.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(delivered, last);
            Assert.Equal(last, sequencer.LastDelivered);
        }
    }
}
