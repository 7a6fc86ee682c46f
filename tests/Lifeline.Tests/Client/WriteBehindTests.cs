using System.Collections.Concurrent;
using Lifeline.Client;

namespace Lifeline.Tests.Client;

/// <summary>
/// The write side of a link for a writer that streams: frames wait in one pooled buffer while the connection is busy and
/// leave in order, in few writes; frames that may not wait go at once or right behind them; the Close only completes once
/// everything before it is written.
/// </summary>
public class WriteBehindTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>Records each write as one piece; writes can be held until the test opens the gate. Reads return what a test queues.</summary>
    private sealed class GatedConnection : DuplexTestStream
    {
        private TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _held;

        public ConcurrentQueue<byte[]> Writes { get; } = new();

        public ConcurrentQueue<byte[]> ToRead { get; } = new();

        /// <summary>Every write from now on fails.</summary>
        public bool Fails { get; set; }

        /// <summary>Completes when a write waits at the gate (see <see cref="Hold"/>).</summary>
        public TaskCompletionSource WriteWaiting { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Writes from now on wait until <see cref="Open"/>.</summary>
        public void Hold()
        {
            _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            WriteWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _held = true;
        }

        public void Open()
        {
            _held = false;
            _gate.TrySetResult();
        }

        public byte[] AllWritten => [.. Writes.SelectMany(w => w)];

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Fails)
            {
                throw new IOException("connection reset by peer");
            }

            var copy = buffer.ToArray(); // the caller may reuse its memory once the write completes
            if (_held)
            {
                WriteWaiting.TrySetResult();
                await _gate.Task;
            }

            Writes.Enqueue(copy);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!ToRead.TryDequeue(out var data))
            {
                return new ValueTask<int>(0);
            }

            data.CopyTo(buffer);
            return new ValueTask<int>(data.Length);
        }
    }

    private static GatedConnection HeldConnection()
    {
        var connection = new GatedConnection();
        connection.Hold();
        return connection;
    }

    private static byte[] FrameNumber(int n) => [0x82, 0x04, (byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n];

    private static async Task UntilIdleAsync(WriteBehind writer)
    {
        using var bound = new CancellationTokenSource(Bound);
        while (writer.Busy)
        {
            await Task.Delay(5, bound.Token);
        }
    }

    [Fact]
    public async Task StreamingWrites_WhileTheConnectionIsBusy_CompleteAtOnce_AndLeaveInOrderInTwoWrites()
    {
        var connection = HeldConnection();
        var writer = new WriteBehind(connection);

        Assert.True(writer.WriteAsync(FrameNumber(0), mayWait: true, untilWritten: false, default).IsCompletedSuccessfully);
        await connection.WriteWaiting.Task.WaitAsync(Bound); // the worker took what was there and is held
        for (var n = 1; n < 1000; n++)
        {
            Assert.True(writer.WriteAsync(FrameNumber(n), mayWait: true, untilWritten: false, default).IsCompletedSuccessfully);
        }

        connection.Open();
        await UntilIdleAsync(writer);

        Assert.Equal(Enumerable.Range(0, 1000).SelectMany(FrameNumber), connection.AllWritten);
        Assert.Equal(2, connection.Writes.Count); // what the worker took first, then all 999 that gathered behind it
        Assert.Equal(2, writer.LinkWrites);
    }

    [Fact]
    public async Task ASmallFrameThatWaits_HoldsASmallBuffer_WhichGrowsAsFramesGather()
    {
        // Thousands of clients in one process that each send one small message at once must not each take 64 KiB.
        var connection = HeldConnection();
        var writer = new WriteBehind(connection);
        Assert.True(writer.WriteAsync(FrameNumber(0), mayWait: true, untilWritten: false, default).IsCompletedSuccessfully);
        await connection.WriteWaiting.Task.WaitAsync(Bound);

        Assert.True(writer.WriteAsync(FrameNumber(1), mayWait: true, untilWritten: false, default).IsCompletedSuccessfully);
        Assert.InRange(writer.GatheringCapacity, 6, 4096);

        var frame = new byte[1024];
        for (var n = 0; n < 40; n++)
        {
            frame[0] = (byte)n;
            Assert.True(writer.WriteAsync(frame, mayWait: true, untilWritten: false, default).IsCompletedSuccessfully);
        }

        Assert.InRange(writer.GatheringCapacity, 6 + (40 * 1024), WriteBehind.Limit);
        connection.Open();
        await UntilIdleAsync(writer);
        var written = connection.AllWritten;
        Assert.Equal(FrameNumber(0).Concat(FrameNumber(1)), written[..12]);
        Assert.Equal(12 + (40 * 1024), written.Length);
        Assert.Equal(Enumerable.Range(0, 40).Select(n => (byte)n), Enumerable.Range(0, 40).Select(n => written[12 + (n * 1024)]));
        Assert.Equal(0, writer.GatheringCapacity);
    }

    [Fact]
    public async Task AFrameThatMayNotWait_IsWrittenAtOnce_WhenNothingIsGathered()
    {
        var connection = HeldConnection();
        var writer = new WriteBehind(connection);

        var write = writer.WriteAsync(FrameNumber(7), mayWait: false, untilWritten: false, default);

        await connection.WriteWaiting.Task.WaitAsync(Bound);
        Assert.False(write.IsCompleted); // written by the caller itself, and held there: not copied and left for later
        Assert.False(writer.Busy);
        connection.Open();
        await write.AsTask().WaitAsync(Bound);
        Assert.Equal(FrameNumber(7), connection.AllWritten);
    }

    [Fact]
    public async Task AFrameThatMayNotWait_GoesRightBehindTheGatheredOnes()
    {
        var connection = HeldConnection();
        var writer = new WriteBehind(connection);
        await writer.WriteAsync(FrameNumber(1), mayWait: true, untilWritten: false, default);
        await connection.WriteWaiting.Task.WaitAsync(Bound);
        await writer.WriteAsync(FrameNumber(2), mayWait: true, untilWritten: false, default);

        var answer = writer.WriteAsync(FrameNumber(3), mayWait: false, untilWritten: false, default);

        Assert.True(answer.IsCompletedSuccessfully); // it must not overtake frame 2, so it waits with it
        connection.Open();
        await UntilIdleAsync(writer);
        Assert.Equal([.. FrameNumber(1), .. FrameNumber(2), .. FrameNumber(3)], connection.AllWritten);
    }

    [Fact]
    public async Task TheClose_CompletesOnlyOnceEverythingBeforeItIsWritten_AndIsWrittenLast()
    {
        var connection = HeldConnection();
        var writer = new WriteBehind(connection);
        await writer.WriteAsync(FrameNumber(1), mayWait: true, untilWritten: false, default);
        await connection.WriteWaiting.Task.WaitAsync(Bound);
        await writer.WriteAsync(FrameNumber(2), mayWait: true, untilWritten: false, default);
        byte[] close = [0x88, 0x02, 0x03, 0xE8];

        var closing = writer.WriteAsync(close, mayWait: false, untilWritten: true, default).AsTask();

        Assert.False(closing.IsCompleted); // after it the connection may be disposed at once: it must really be written
        connection.Open();
        await closing.WaitAsync(Bound);
        Assert.Equal(close, connection.Writes.Last());
        Assert.Equal([.. FrameNumber(1), .. FrameNumber(2), .. close], connection.AllWritten);
        Assert.False(writer.Busy);
    }

    [Fact]
    public async Task BeyondTheLimit_AWriteWaitsForRoom_ThenAllLeaveInOrder()
    {
        var connection = HeldConnection();
        var writer = new WriteBehind(connection);
        var frame = new byte[1024];
        await writer.WriteAsync(frame, mayWait: true, untilWritten: false, default);
        await connection.WriteWaiting.Task.WaitAsync(Bound); // the first is out; 64 more fill the buffer
        for (var n = 0; n < WriteBehind.Limit / frame.Length; n++)
        {
            frame[0] = (byte)n;
            Assert.True(writer.WriteAsync(frame, mayWait: true, untilWritten: false, default).IsCompletedSuccessfully);
        }

        frame[0] = 0xFF;
        var overflowing = writer.WriteAsync(frame, mayWait: true, untilWritten: false, default).AsTask();

        Assert.False(overflowing.IsCompleted);
        connection.Open();
        await overflowing.WaitAsync(Bound);
        await UntilIdleAsync(writer);
        var written = connection.AllWritten;
        Assert.Equal(frame.Length * ((WriteBehind.Limit / frame.Length) + 2), written.Length);
        Assert.Equal(0xFF, written[^frame.Length]);
    }

    [Fact]
    public async Task AFailedWrite_FailsEveryLaterWrite_WithTheCause_AndHoldsNoBuffer()
    {
        var connection = HeldConnection();
        var writer = new WriteBehind(connection);
        await writer.WriteAsync(FrameNumber(1), mayWait: true, untilWritten: false, default);
        await connection.WriteWaiting.Task.WaitAsync(Bound);
        await writer.WriteAsync(FrameNumber(2), mayWait: true, untilWritten: false, default); // gathered, never sent
        connection.Fails = true;

        connection.Open();
        await UntilIdleAsync(writer);
        var error = await Assert.ThrowsAsync<IOException>(async () => await writer.WriteAsync(FrameNumber(3), mayWait: false, untilWritten: false, default));

        Assert.Equal("connection reset by peer", error.InnerException?.Message);
        Assert.Contains("failed earlier", error.Message, StringComparison.Ordinal);
        Assert.False(writer.Busy);
        Assert.Equal(FrameNumber(1), connection.AllWritten); // nothing after the failure was written
    }

    [Fact]
    public async Task LinkStream_GathersTheWritesOfASenderThatStreams_ButWritesAnAnswerToWhatItReadAtOnce()
    {
        var connection = new GatedConnection();
        var link = new LinkStream(connection, framed: true);

        await link.WriteAsync(FrameNumber(1)); // the first write: nothing to say it streams
        Assert.Null(link.WriteBehind);
        connection.Hold();
        var streamed = link.WriteAsync(FrameNumber(2)); // again, and nothing read since: it streams

        Assert.True(streamed.IsCompletedSuccessfully); // gathered, while the connection's write is held
        await connection.WriteWaiting.Task.WaitAsync(Bound);
        connection.Open();
        await UntilIdleAsync(link.WriteBehind!);

        connection.ToRead.Enqueue([0x82, 0x01, 0x55]);
        Assert.Equal(3, await link.ReadAsync(new byte[16]));
        connection.Hold();
        var answer = link.WriteAsync(FrameNumber(3)).AsTask(); // after a read: an answer, written at once

        await connection.WriteWaiting.Task.WaitAsync(Bound);
        Assert.False(answer.IsCompleted);
        connection.Open();
        await answer.WaitAsync(Bound);
        Assert.Equal([.. FrameNumber(1), .. FrameNumber(2), .. FrameNumber(3)], connection.AllWritten);
    }

    [Fact]
    public async Task LinkStream_OverHttp2_WritesEverythingAtOnce()
    {
        var connection = new GatedConnection();
        var link = new LinkStream(connection, framed: false);

        await link.WriteAsync(FrameNumber(1));
        connection.Hold();
        var second = link.WriteAsync(FrameNumber(2)).AsTask();

        await connection.WriteWaiting.Task.WaitAsync(Bound);
        Assert.False(second.IsCompleted); // an HTTP/2 stream sends only on a flush: nothing is left waiting in a buffer of ours
        Assert.Null(link.WriteBehind);
        connection.Open();
        await second.WaitAsync(Bound);
    }

    [Fact]
    public async Task LinkStream_AfterAFailedWrite_GathersNothing_SoTheNextSendLearnsFromTheConnectionItself()
    {
        var connection = new GatedConnection();
        var link = new LinkStream(connection, framed: true);
        await link.WriteAsync(FrameNumber(1));
        connection.ToRead.Enqueue([0x82, 0x01, 0x55]);
        Assert.Equal(3, await link.ReadAsync(new byte[16])); // so that the next write is an answer, written at once
        connection.Fails = true;
        await Assert.ThrowsAsync<IOException>(async () => await link.WriteAsync(FrameNumber(2))); // the link broke under it

        connection.Fails = false;
        connection.Hold();
        var next = link.WriteAsync(FrameNumber(3)).AsTask(); // nothing read since: it would have been gathered

        await connection.WriteWaiting.Task.WaitAsync(Bound);
        Assert.False(next.IsCompleted); // handed to the connection itself, which would have failed it on a broken link
        Assert.Null(link.WriteBehind);
        connection.Open();
        await next.WaitAsync(Bound);
    }

    [Fact]
    public async Task LinkStream_TheCloseAfterGatheredFrames_CompletesOnlyOnceAllIsWritten()
    {
        var connection = new GatedConnection();
        var link = new LinkStream(connection, framed: true);
        await link.WriteAsync(FrameNumber(1));
        connection.Hold();
        await link.WriteAsync(FrameNumber(2)); // gathered; the worker is held at the connection
        await connection.WriteWaiting.Task.WaitAsync(Bound);
        byte[] close = [0x88, 0x02, 0x03, 0xE8];

        var closing = link.WriteAsync(close).AsTask();

        Assert.False(closing.IsCompleted); // ClientWebSocket may dispose the connection right after its Close
        connection.Open();
        await closing.WaitAsync(Bound);
        Assert.Equal([.. FrameNumber(1), .. FrameNumber(2), .. close], connection.AllWritten);
    }

    [Fact]
    public async Task LinkStream_APingAskedForWhileTheWorkerWrites_GoesBehindTheGatheredFrames_NeverBetweenTheirBytes()
    {
        var connection = new GatedConnection();
        var link = new LinkStream(connection, framed: true);
        await link.WriteAsync(FrameNumber(1));
        connection.Hold();
        await link.WriteAsync(FrameNumber(2));
        await connection.WriteWaiting.Task.WaitAsync(Bound); // the worker writes frame 2, held
        await link.WriteAsync(FrameNumber(3)); // gathered behind it

        link.RequestPing();
        connection.Open();
        await UntilIdleAsync(link.WriteBehind!);

        Assert.False(link.PingPending);
        var written = connection.AllWritten;
        Assert.Equal([.. FrameNumber(1), .. FrameNumber(2), .. FrameNumber(3)], written[..18]);
        Assert.Equal([0x89, 0x80], written[18..20]); // the Ping, whole, after them
        Assert.Equal(24, written.Length);
    }
}
