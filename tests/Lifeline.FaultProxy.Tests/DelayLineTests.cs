using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.FaultProxy.Tests;

/// <summary>The chunks of a direction on their way under latency: order, the FIN behind them, and the bound.</summary>
public sealed class DelayLineTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new();
    private readonly ConcurrentQueue<string> _passed = new();
    private readonly CancellationTokenSource _stop = new();

    private DelayLine NewLine() => new(_time,
        (chunk, _) =>
        {
            _passed.Enqueue(Encoding.ASCII.GetString(chunk.Span));
            return ValueTask.CompletedTask;
        },
        _ =>
        {
            _passed.Enqueue("FIN");
            return ValueTask.CompletedTask;
        },
        _stop.Token);

    [Fact]
    public async Task AChunkWithLessDelay_DoesNotOvertakeTheOneBeforeIt()
    {
        var line = NewLine();

        Assert.True(await line.AddAsync("a"u8.ToArray(), TimeSpan.FromSeconds(1), CancellationToken.None));
        Assert.True(await line.AddAsync("b"u8.ToArray(), TimeSpan.Zero, CancellationToken.None)); // a jitter drew less
        Assert.True(await line.AddFinAsync(TimeSpan.Zero, CancellationToken.None));
        await WaitUntilAsync(() => line.TimersArmed == 1); // an advance before the timer is set would move its due
        _time.Advance(TimeSpan.FromMilliseconds(999));
        await Task.Delay(50); // what may not leave yet has had its chance to
        Assert.Empty(_passed);
        Assert.Equal(2, line.WaitingBytes);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        await line.CompleteAsync().WaitAsync(Bound);

        Assert.Equal(["a", "b", "FIN"], _passed);
        Assert.True(line.IsEmpty);
        Assert.Equal(0, line.WaitingBytes);
    }

    [Fact]
    public async Task ChunksAddedWhileOthersWait_LeaveTheirOwnDelayAfterTheyCame()
    {
        var line = NewLine();

        await line.AddAsync("a"u8.ToArray(), TimeSpan.FromSeconds(1), CancellationToken.None);
        await WaitUntilAsync(() => line.TimersArmed == 1);
        _time.Advance(TimeSpan.FromMilliseconds(500));
        await line.AddAsync("b"u8.ToArray(), TimeSpan.FromSeconds(1), CancellationToken.None);
        _time.Advance(TimeSpan.FromMilliseconds(500));
        await WaitUntilAsync(() => line.WaitingBytes == 1 && line.TimersArmed == 2);
        Assert.Equal(["a"], _passed); // "b" has half of its delay to go (its own timer): it did not wait for "a" first

        _time.Advance(TimeSpan.FromMilliseconds(500));
        await line.CompleteAsync().WaitAsync(Bound);
        Assert.Equal(["a", "b"], _passed);
    }

    [Fact]
    public async Task AFullLine_HoldsTheNextAddUntilAChunkLeaves()
    {
        var line = NewLine();
        for (var i = 0; i < 64; i++)
        {
            var add = line.AddAsync("x"u8.ToArray(), TimeSpan.FromSeconds(1), CancellationToken.None);
            Assert.True(add.IsCompletedSuccessfully); // room: taken at once
            Assert.True(await add);
        }

        var next = line.AddAsync("y"u8.ToArray(), TimeSpan.FromSeconds(1), CancellationToken.None).AsTask();
        await WaitUntilAsync(() => line.TimersArmed == 1);
        Assert.False(next.IsCompleted); // the pump stops reading: the sender's TCP window fills, as over a long path
        Assert.Equal(64, line.WaitingBytes);

        _time.Advance(TimeSpan.FromSeconds(1)); // "y" was read then too: it leaves right behind the others
        Assert.True(await next.WaitAsync(Bound));
        await line.CompleteAsync().WaitAsync(Bound);
        Assert.Equal(65, _passed.Count);
        Assert.Equal("y", _passed.Last());
    }

    [Fact]
    public async Task Stopped_DropsWhatWaits_AndRefusesMore()
    {
        var line = NewLine();
        await line.AddAsync("a"u8.ToArray(), TimeSpan.FromSeconds(1), CancellationToken.None);

        await _stop.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => line.CompleteAsync().WaitAsync(Bound));
        Assert.False(await line.AddAsync("b"u8.ToArray(), TimeSpan.Zero, CancellationToken.None));
        Assert.Empty(_passed);
        Assert.Equal(0, line.WaitingBytes);
        Assert.True(line.IsEmpty);
    }

    [Fact]
    public async Task Abandoned_WhileAChunkIsHeld_EndsAndDropsWhatWaits()
    {
        // A black hole holds a chunk in the forward until the link ends: a pump that failed must not wait for it.
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var line = new DelayLine(_time,
            async (_, ct) =>
            {
                held.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
            },
            _ => ValueTask.CompletedTask,
            _stop.Token);
        await line.AddAsync("a"u8.ToArray(), TimeSpan.Zero, CancellationToken.None);
        await line.AddAsync("b"u8.ToArray(), TimeSpan.Zero, CancellationToken.None);
        await held.Task.WaitAsync(Bound);

        await line.AbandonAsync().WaitAsync(Bound);

        Assert.Equal(0, line.WaitingBytes);
        Assert.False(await line.AddAsync("c"u8.ToArray(), TimeSpan.Zero, CancellationToken.None));
    }

    [Fact]
    public async Task ADelayOfAFractionOfAMillisecond_WaitsARoundedUpTimer_InsteadOfSpinningOnTheClock()
    {
        // A timer counts whole milliseconds: the last 0.5 ms of a 10.5 ms delay waited nothing before, and the line
        // spun on the clock until the chunk was due. On this fake clock, which never moves while it spins, for ever:
        // the advance that fired the first timer never returned.
        var line = NewLine();
        Assert.True(await line.AddAsync("a"u8.ToArray(), TimeSpan.FromTicks(105_000), CancellationToken.None)); // 10.5 ms
        await WaitUntilAsync(() => line.TimersArmed == 1); // an advance before the timer is set would move its due

        await Task.Run(() => _time.Advance(TimeSpan.FromMilliseconds(10))).WaitAsync(Bound);
        await Task.Delay(50); // what may not leave yet has had its chance to
        Assert.Empty(_passed);

        await Task.Run(() => _time.Advance(TimeSpan.FromMilliseconds(1))).WaitAsync(Bound); // 11 ms: the timer, rounded up
        await WaitUntilAsync(() => _passed.Count == 1);
        Assert.Equal(1, line.TimersArmed);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(Bound);
        while (!condition())
        {
            await Task.Delay(10, cts.Token);
        }
    }
}
