using Lifeline.Session;
using Lifeline.Session.Wire;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.Tests.Session;

public class ReplayBufferTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static ReplayBuffer Create(int maxMessages = 100, long maxBytes = 1000, ReplayBufferFullMode mode = ReplayBufferFullMode.Wait, TimeProvider? time = null) =>
        new(new ReplayBufferOptions { MaxMessages = maxMessages, MaxBytes = maxBytes, FullMode = mode }, time ?? new FakeTimeProvider());

    private static async Task<long> Append(ReplayBuffer buffer, int size, byte fill = 1)
    {
        var result = await buffer.AppendAsync(Enumerable.Repeat(fill, size).ToArray(), false);
        Assert.Equal(ReplayAppendStatus.Appended, result.Status);
        return result.Sequence;
    }

    [Fact]
    public async Task AppendAsync_WithRoom_NumbersFromOneAndCompletesSynchronously()
    {
        using var buffer = Create();

        var first = buffer.AppendAsync(new byte[] { 1 }, false);
        var second = buffer.AppendAsync(new byte[] { 2, 2 }, true);

        Assert.True(first.IsCompletedSuccessfully);
        Assert.True(second.IsCompletedSuccessfully);
        Assert.Equal(1, (await first).Sequence);
        Assert.Equal(2, (await second).Sequence);
        Assert.Equal(2, buffer.Count);
        Assert.Equal(3, buffer.Bytes);
        Assert.Equal(new SequenceRange(1, 2), buffer.Unacknowledged);
    }

    [Fact]
    public async Task AppendAsync_CallerReusesItsBuffer_ReplayHasTheOriginalBytes()
    {
        using var buffer = Create();
        var payload = new byte[] { 1, 2, 3 };

        await buffer.AppendAsync(payload, false);
        payload[0] = 9;

        Assert.Equal(ReplayStatus.Ready, buffer.BeginReplay(0, out var lease));
        using (lease)
        {
            Assert.Equal(new byte[] { 1, 2, 3 }, lease!.Frames[0].Payload.ToArray());
        }
    }

    [Fact]
    public void AppendAsync_PayloadLargerThanMaxBytes_ThrowsArgumentException()
    {
        using var buffer = Create(maxBytes: 10);

        Assert.Throws<ArgumentException>(() => buffer.AppendAsync(new byte[11], false));
        Assert.Equal(0, buffer.LastSequence);
    }

    [Fact]
    public async Task Acknowledge_Cumulative_ReleasesUpToTheAckAndReportsTheRange()
    {
        using var buffer = Create();
        for (var i = 0; i < 5; i++)
        {
            await Append(buffer, 10);
        }

        var result = buffer.Acknowledge(3);

        Assert.Equal(new ReplayAckResult(ReplayAckStatus.Advanced, new SequenceRange(1, 3), 30), result);
        Assert.Equal(2, buffer.Count);
        Assert.Equal(20, buffer.Bytes);
        Assert.Equal(3, buffer.LastAcknowledged);
        Assert.Equal(new SequenceRange(4, 2), buffer.Unacknowledged);
    }

    [Fact]
    public async Task Acknowledge_BeyondSent_IsReportedAndChangesNothing()
    {
        using var buffer = Create();
        await Append(buffer, 1);

        var result = buffer.Acknowledge(2);

        Assert.Equal(ReplayAckStatus.BeyondSent, result.Status);
        Assert.Equal(1, buffer.Count);
        Assert.Equal(0, buffer.LastAcknowledged);
    }

    [Fact]
    public async Task Acknowledge_RepeatedOrLower_IsUnchanged()
    {
        using var buffer = Create();
        await Append(buffer, 1);
        await Append(buffer, 1);
        buffer.Acknowledge(2);

        Assert.Equal(ReplayAckStatus.Unchanged, buffer.Acknowledge(2).Status);
        Assert.Equal(ReplayAckStatus.Unchanged, buffer.Acknowledge(1).Status);
        Assert.Equal(ReplayAckStatus.Unchanged, buffer.Acknowledge(0).Status);
    }

    [Fact]
    public async Task Fail_OverTheMessageBound_ThrowsAndKeepsTheBuffer()
    {
        using var buffer = Create(maxMessages: 2, mode: ReplayBufferFullMode.Fail);
        await Append(buffer, 1);
        await Append(buffer, 1);

        var error = await Assert.ThrowsAsync<ReplayBufferFullException>(() => buffer.AppendAsync(new byte[1], false).AsTask());

        Assert.Contains("replay buffer is full", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, buffer.Count);
        Assert.Equal(2, buffer.LastSequence);
        Assert.Null(buffer.End);
    }

    [Fact]
    public async Task Fail_OverTheByteBound_Throws()
    {
        using var buffer = Create(maxBytes: 10, mode: ReplayBufferFullMode.Fail);
        await Append(buffer, 6);

        await Assert.ThrowsAsync<ReplayBufferFullException>(() => buffer.AppendAsync(new byte[5], false).AsTask());
        Assert.Equal(6, buffer.Bytes);
    }

    [Fact]
    public async Task Wait_WhenFull_CompletesOnceAnAckFreesRoom()
    {
        using var buffer = Create(maxMessages: 1);
        await Append(buffer, 1, 1);

        var waiting = buffer.AppendAsync(new byte[] { 2 }, false).AsTask();
        Assert.False(waiting.IsCompleted);

        buffer.Acknowledge(1);
        var result = await waiting.WaitAsync(Bound);

        Assert.Equal(new ReplayAppendResult(ReplayAppendStatus.Appended, 2, null), result);
        Assert.Equal(1, buffer.Count);
    }

    [Fact]
    public async Task Wait_AckThatFreesTooLittle_KeepsWaiting()
    {
        using var buffer = Create(maxBytes: 10);
        await Append(buffer, 2);
        await Append(buffer, 8);

        var waiting = buffer.AppendAsync(new byte[5], false).AsTask();
        buffer.Acknowledge(1);
        await Task.Yield();
        Assert.False(waiting.IsCompleted);

        buffer.Acknowledge(2);
        Assert.Equal(3, (await waiting.WaitAsync(Bound)).Sequence);
    }

    [Fact]
    public async Task Wait_Cancelled_ThrowsAndAppendsNothing()
    {
        using var buffer = Create(maxMessages: 1);
        await Append(buffer, 1);
        using var cancel = new CancellationTokenSource();

        var waiting = buffer.AppendAsync(new byte[1], false, cancellationToken: cancel.Token).AsTask();
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Bound));
        Assert.Equal(1, buffer.LastSequence);
        buffer.Acknowledge(1);
        Assert.Equal(0, buffer.Count);
    }

    [Fact]
    public async Task EndSession_WhenFull_ReportsSessionEndedWithTheUnacknowledgedRange()
    {
        using var buffer = Create(maxMessages: 3, mode: ReplayBufferFullMode.EndSession);
        for (var i = 0; i < 3; i++)
        {
            await Append(buffer, 4);
        }

        buffer.Acknowledge(1);
        await Append(buffer, 4);

        var result = await buffer.AppendAsync(new byte[4], false);

        Assert.Equal(ReplayAppendStatus.SessionEnded, result.Status);
        Assert.Equal(new ReplayBufferEnd(SessionLostReason.BufferFull, new SequenceRange(2, 3)), buffer.End);
        Assert.Equal(0, buffer.Count);
        Assert.Equal(0, buffer.Bytes);
        Assert.Equal(ReplayAppendStatus.SessionEnded, (await buffer.AppendAsync(new byte[1], false)).Status);
        Assert.Equal(ReplayStatus.Ended, buffer.BeginReplay(1, out _));
    }

    [Fact]
    public async Task EndSession_WhileAnAppendWaits_WakesItWithSessionEnded()
    {
        using var buffer = Create(maxMessages: 1);
        await Append(buffer, 1);
        var waiting = buffer.AppendAsync(new byte[1], false).AsTask();

        var end = buffer.EndSession(SessionLostReason.ReplayUnavailable);

        Assert.Equal(ReplayAppendStatus.SessionEnded, (await waiting.WaitAsync(Bound)).Status);
        Assert.Equal(new SequenceRange(1, 1), end.Unacknowledged);
        Assert.Equal(end, buffer.EndSession(SessionLostReason.BufferFull)); // the first end wins
    }

    [Fact]
    public async Task TrackAcknowledgement_WhenAcknowledged_CompletesWithTrue()
    {
        using var buffer = Create();
        var first = await buffer.AppendAsync(new byte[1], false, trackAcknowledgement: true);
        var second = await buffer.AppendAsync(new byte[1], false, trackAcknowledgement: true);

        buffer.Acknowledge(1);

        Assert.True(await first.Acknowledged!.WaitAsync(Bound));
        Assert.False(second.Acknowledged!.IsCompleted);
    }

    [Fact]
    public async Task TrackAcknowledgement_WhenTheSessionEnds_CompletesWithFalse()
    {
        using var buffer = Create();
        var result = await buffer.AppendAsync(new byte[1], false, trackAcknowledgement: true);

        buffer.EndSession(SessionLostReason.NotFound);

        Assert.False(await result.Acknowledged!.WaitAsync(Bound));
    }

    [Fact]
    public async Task MaxAge_OldestUnacknowledgedTooOld_EndsTheSessionAsExpired()
    {
        var time = new FakeTimeProvider();
        using var buffer = new ReplayBuffer(new ReplayBufferOptions { MaxAge = TimeSpan.FromMinutes(1) }, time);
        await Append(buffer, 1);
        time.Advance(TimeSpan.FromSeconds(59));
        await Append(buffer, 1);
        Assert.Null(buffer.CheckAge());

        time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(new ReplayBufferEnd(SessionLostReason.Expired, new SequenceRange(1, 2)), buffer.CheckAge());
        Assert.Equal(ReplayAppendStatus.SessionEnded, (await buffer.AppendAsync(new byte[1], false)).Status);
    }

    [Fact]
    public async Task MaxAge_FullBufferWaitingForAcksThatNeverCome_TheWaitsEndWhenTheOldestExpires()
    {
        // A peer that stays connected but acknowledges nothing: the waits for room ended only with an ack, so a full
        // buffer's sender waited for as long as the socket lived and the age bound never applied.
        var time = new FakeTimeProvider();
        using var buffer = new ReplayBuffer(new ReplayBufferOptions { MaxMessages = 2, MaxAge = TimeSpan.FromMinutes(1) }, time);
        await Append(buffer, 1);
        await Append(buffer, 1);
        var append = buffer.AppendAsync(new byte[1], false).AsTask();
        var room = buffer.WaitForRoomAsync(1, CancellationToken.None).AsTask();
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.False(append.IsCompleted);
        Assert.False(room.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(ReplayAppendStatus.SessionEnded, (await append.WaitAsync(Bound)).Status);
        await room.WaitAsync(Bound);
        Assert.Equal(SessionLostReason.Expired, buffer.End?.Reason);
    }

    [Fact]
    public async Task MaxAge_ResumedAfterAnOutageLongerThanIt_OnlyTheTimeUpCounts()
    {
        // The link was down for 2.5 of the 3 minutes a message waited: nobody could acknowledge it then. Before, the
        // resume succeeded and the next append ended the session as expired at once.
        var time = new FakeTimeProvider();
        using var buffer = new ReplayBuffer(new ReplayBufferOptions { MaxAge = TimeSpan.FromMinutes(1) }, time);
        await Append(buffer, 1);
        time.Advance(TimeSpan.FromMinutes(3));

        buffer.ForgiveDowntime(TimeSpan.FromSeconds(150));
        Assert.Equal(ReplayStatus.Ready, buffer.BeginReplay(0, out var lease));
        lease!.Dispose();

        Assert.Equal(2, await Append(buffer, 1));
        Assert.Null(buffer.CheckAge());
        time.Advance(TimeSpan.FromSeconds(31)); // 61 s up and still not acknowledged: the bound applies
        Assert.Equal(new ReplayBufferEnd(SessionLostReason.Expired, new SequenceRange(1, 2)), buffer.CheckAge());
    }

    [Fact]
    public async Task MaxAge_AcknowledgedInTime_DoesNotExpire()
    {
        var time = new FakeTimeProvider();
        using var buffer = new ReplayBuffer(new ReplayBufferOptions { MaxAge = TimeSpan.FromMinutes(1) }, time);
        await Append(buffer, 1);
        time.Advance(TimeSpan.FromSeconds(50));
        await Append(buffer, 1);
        buffer.Acknowledge(1);

        time.Advance(TimeSpan.FromSeconds(50));

        Assert.Null(buffer.CheckAge());
        Assert.Equal(3, await Append(buffer, 1));
    }

    [Fact]
    public async Task BeginReplay_AfterThePeersLastReceived_GivesTheRestInOrder()
    {
        using var buffer = Create();
        for (byte i = 1; i <= 5; i++)
        {
            await buffer.AppendAsync(new[] { i }, i % 2 == 0);
        }

        buffer.Acknowledge(2);

        Assert.Equal(ReplayStatus.Ready, buffer.BeginReplay(3, out var lease));
        using (lease)
        {
            Assert.Equal([4L, 5L], lease!.Frames.Select(f => f.Sequence));
            Assert.Equal([true, false], lease.Frames.Select(f => f.IsText));
            Assert.Equal([4, 5], lease.Frames.Select(f => f.Payload.Span[0]));
        }
    }

    [Fact]
    public async Task BeginReplay_NothingUnacknowledged_IsReadyAndEmpty()
    {
        using var buffer = Create();
        await Append(buffer, 1);
        buffer.Acknowledge(1);

        Assert.Equal(ReplayStatus.Ready, buffer.BeginReplay(1, out var lease));
        Assert.Empty(lease!.Frames);
        lease.Dispose();
    }

    [Fact]
    public async Task BeginReplay_BeyondSent_IsReported()
    {
        using var buffer = Create();
        await Append(buffer, 1);

        Assert.Equal(ReplayStatus.BeyondSent, buffer.BeginReplay(2, out var lease));
        Assert.Null(lease);
    }

    [Fact]
    public async Task BeginReplay_FromBeforeTheLastAck_IsUnavailable()
    {
        using var buffer = Create();
        await Append(buffer, 1);
        await Append(buffer, 1);
        buffer.Acknowledge(2);

        Assert.Equal(ReplayStatus.Unavailable, buffer.BeginReplay(1, out _));
    }

    [Fact]
    public async Task BeginReplay_AckArrivesDuringTheLease_PayloadStaysIntactUntilDisposed()
    {
        using var buffer = Create(maxBytes: 100_000);
        await Append(buffer, 4096, 7);

        buffer.BeginReplay(0, out var lease);
        buffer.Acknowledge(1);
        for (var i = 0; i < 20; i++)
        {
            await Append(buffer, 4096, 9); // would reuse a returned array
            buffer.Acknowledge(buffer.LastSequence);
        }

        Assert.All(lease!.Frames[0].Payload.ToArray(), b => Assert.Equal(7, b));
        lease.Dispose();
        lease.Dispose();
    }

    [Fact]
    public async Task Restore_InOrder_ContinuesTheNumberingAndReplays()
    {
        using var buffer = new ReplayBuffer(new ReplayBufferOptions(), new FakeTimeProvider(), lastAcknowledged: 40);

        buffer.Restore(41, true, "a"u8);
        buffer.Restore(42, false, "b"u8);

        Assert.Equal(42, buffer.LastSequence);
        Assert.Equal(43, (await buffer.AppendAsync(new byte[1], false)).Sequence);
        Assert.Equal(ReplayStatus.Ready, buffer.BeginReplay(40, out var lease));
        Assert.Equal([41L, 42L, 43L], lease!.Frames.Select(f => f.Sequence));
        lease.Dispose();
    }

    [Fact]
    public void Restore_OutOfOrder_Throws()
    {
        using var buffer = new ReplayBuffer(new ReplayBufferOptions(), new FakeTimeProvider(), lastAcknowledged: 40);

        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Restore(43, false, default));
    }

    [Fact]
    public async Task SnapshotUnacknowledged_CopiesSequencesTypesAndPayloads()
    {
        using var buffer = Create();
        await buffer.AppendAsync("x"u8.ToArray(), true);
        await buffer.AppendAsync(new byte[] { 1, 2 }, false);
        buffer.Acknowledge(1);

        var snapshot = buffer.SnapshotUnacknowledged();

        var message = Assert.Single(snapshot);
        Assert.Equal(2, message.Sequence);
        Assert.False(message.IsText);
        Assert.Equal(new byte[] { 1, 2 }, message.Payload.ToArray());
    }

    [Fact]
    public async Task Dispose_WithWaitersAndTrackedMessages_FailsWaitersAndCompletesAcksWithFalse()
    {
        var buffer = Create(maxMessages: 1);
        var tracked = await buffer.AppendAsync(new byte[1], false, trackAcknowledgement: true);
        var waiting = buffer.AppendAsync(new byte[1], false).AsTask();

        buffer.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(Bound));
        Assert.False(await tracked.Acknowledged!.WaitAsync(Bound));
        Assert.Throws<ObjectDisposedException>(() => buffer.AppendAsync(new byte[1], false));
        buffer.Dispose();
    }

    [Fact]
    public async Task AppendAsync_ManyMessages_GrowsPastTheInitialRing()
    {
        using var buffer = Create(maxMessages: 1000, maxBytes: 100_000);
        for (var i = 1; i <= 500; i++)
        {
            await Append(buffer, 1, (byte)i);
            if (i % 7 == 0)
            {
                buffer.Acknowledge(i - 3);
            }
        }

        buffer.BeginReplay(buffer.LastAcknowledged, out var lease);
        using (lease)
        {
            Assert.Equal(Enumerable.Range((int)buffer.LastAcknowledged + 1, buffer.Count).Select(i => (long)i), lease!.Frames.Select(f => f.Sequence));
            Assert.All(lease.Frames, f => Assert.Equal((byte)f.Sequence, f.Payload.Span[0]));
        }
    }

    [Theory]
    [InlineData(0, 1, 1)]
    [InlineData(1, 0, 1)]
    [InlineData(1, 1, 0)]
    public void Options_OutOfRange_Throw(int maxMessages, long maxBytes, int maxAgeSeconds)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayBufferOptions
        {
            MaxMessages = maxMessages,
            MaxBytes = maxBytes,
            MaxAge = TimeSpan.FromSeconds(maxAgeSeconds),
        });
    }

    [Fact]
    public void TryAppendForWrite_WithRoom_NumbersAndLeavesHeaderRoomInFrontOfTheCopy()
    {
        using var buffer = Create();
        var payload = new byte[] { 7, 8, 9 };

        Assert.True(buffer.TryAppendForWrite(payload, isText: false, headroom: 4, out var sequence, out var array, out var offset));

        Assert.Equal(1, sequence);
        Assert.Equal(4, offset);
        Assert.Equal(payload, array.AsSpan(offset, payload.Length).ToArray());
        Assert.Equal(1, buffer.Count);
        Assert.Equal(3, buffer.Bytes);
        buffer.EndWrite();
    }

    [Theory]
    [InlineData(32)] // a power of two: the header room alone takes it to the next array size
    [InlineData(1)]
    [InlineData(1000)]
    public void TryAppendForWrite_SmallPayload_LeavesHeaderRoomEvenInABiggerArray(int length)
    {
        // A small copy in an array one size up costs a few bytes; without the room the frame is built in a second
        // rented array, copied again, on every send.
        using var buffer = Create(maxBytes: 10_000);

        Assert.True(buffer.TryAppendForWrite(new byte[length], isText: false, headroom: SessionFrameWriter.MaxDataHeaderLength, out _, out var array, out var offset));

        Assert.Equal(SessionFrameWriter.MaxDataHeaderLength, offset);
        Assert.True(array.Length >= offset + length);
        buffer.EndWrite();
    }

    [Fact]
    public void TryAppendForWrite_HeaderRoomWouldNeedABiggerArray_CopyStartsAtZero()
    {
        using var buffer = Create(maxBytes: 10_000);

        Assert.True(buffer.TryAppendForWrite(new byte[4096], isText: false, headroom: SessionFrameWriter.MaxDataHeaderLength, out _, out var array, out var offset));

        Assert.Equal(0, offset);
        Assert.Equal(4096, array.Length);
        buffer.EndWrite();
    }

    [Fact]
    public async Task TryAppendForWrite_Full_ReturnsFalseAndChangesNothing()
    {
        using var buffer = Create(maxMessages: 1);
        await Append(buffer, 1);

        Assert.False(buffer.TryAppendForWrite(new byte[] { 1 }, isText: false, headroom: 4, out _, out _, out _));

        Assert.Equal(1, buffer.Count);
        Assert.Equal(1, buffer.LastSequence);
        Assert.False(buffer.HasRoomFor(1));
    }

    [Fact]
    public void TryAppendForWrite_AckedDuringTheWrite_CopyStaysIntactUntilEndWrite()
    {
        using var buffer = Create();
        Assert.True(buffer.TryAppendForWrite(new byte[] { 5, 5, 5 }, isText: false, headroom: 4, out var sequence, out var array, out var offset));

        buffer.Acknowledge(sequence);
        Assert.True(buffer.TryAppendForWrite(new byte[] { 6, 6, 6 }, isText: false, headroom: 4, out _, out var next, out _));

        Assert.NotSame(array, next); // the first copy was not recycled while its write was open
        Assert.Equal(new byte[] { 5, 5, 5 }, array.AsSpan(offset, 3).ToArray());
        buffer.EndWrite();
        buffer.EndWrite();
    }

    [Fact]
    public void TryAppendForWrite_AfterAcknowledgement_ReusesTheAcknowledgedArray()
    {
        using var buffer = Create();
        Assert.True(buffer.TryAppendForWrite(new byte[] { 1, 2 }, isText: false, headroom: 0, out var sequence, out var first, out _));
        buffer.EndWrite();
        buffer.Acknowledge(sequence);

        Assert.True(buffer.TryAppendForWrite(new byte[] { 3, 4 }, isText: false, headroom: 0, out _, out var second, out _));
        buffer.EndWrite();

        Assert.Same(first, second);
        Assert.Equal(new byte[] { 3, 4 }, second.AsSpan(0, 2).ToArray());
    }
}
