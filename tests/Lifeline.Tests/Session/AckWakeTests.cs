using Lifeline.Session;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.Tests.Session;

/// <summary>The ack loop's wake: set, timed out on the client's clock, ended with the connection, and free per wait.</summary>
public sealed class AckWakeTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new();
    private readonly CancellationTokenSource _connection = new();

    public void Dispose() => _connection.Dispose();

    [Fact]
    public async Task SetBeforeTheWait_TheWaitReturnsAtOnce_AndOnlyOnce()
    {
        using var wake = new AckWake(_time, _connection.Token);
        wake.Set();
        wake.Set(); // a second set before the wait is the same wake

        Assert.True(wake.WaitAsync(Timeout.InfiniteTimeSpan, wake.Now).IsCompletedSuccessfully);
        var next = wake.WaitAsync(Timeout.InfiniteTimeSpan, wake.Now);
        Assert.False(next.IsCompleted);

        wake.Set();
        await next.AsTask().WaitAsync(Bound);
    }

    [Fact]
    public async Task TimedWait_EndsWhenItsDelayHasPassedOnTheClientsClock()
    {
        // An hour: on any other clock than the fake one the wait could not end within the test's bound.
        using var wake = new AckWake(_time, _connection.Token);
        var wait = wake.WaitAsync(TimeSpan.FromHours(1), wake.Now);

        _time.Advance(TimeSpan.FromHours(1) - TimeSpan.FromMilliseconds(1));
        Assert.False(wait.IsCompleted); // the source itself, not a task completed later on the pool
        _time.Advance(TimeSpan.FromMilliseconds(1));

        await wait.AsTask().WaitAsync(Bound);
    }

    [Fact]
    public async Task TheDelay_CountsFromWhenTheLoopTookTheTime()
    {
        using var wake = new AckWake(_time, _connection.Token);
        var from = wake.Now;
        _time.Advance(TimeSpan.FromMinutes(40)); // while the loop worked out its delay

        var wait = wake.WaitAsync(TimeSpan.FromHours(1), from);
        _time.Advance(TimeSpan.FromMinutes(20));
        await wait.AsTask().WaitAsync(Bound);

        from = wake.Now;
        _time.Advance(TimeSpan.FromHours(2));
        Assert.True(wake.WaitAsync(TimeSpan.FromHours(1), from).IsCompletedSuccessfully); // due already
    }

    [Fact]
    public async Task AWaitSetBeforeItsDelay_StopsItsTimer_SoTheNextWaitIsNotCutShort()
    {
        using var wake = new AckWake(_time, _connection.Token);
        var first = wake.WaitAsync(TimeSpan.FromHours(1), wake.Now);
        wake.Set();
        await first.AsTask().WaitAsync(Bound);

        var second = wake.WaitAsync(Timeout.InfiniteTimeSpan, wake.Now);
        _time.Advance(TimeSpan.FromHours(2));
        Assert.False(second.IsCompleted);

        wake.Set();
        await second.AsTask().WaitAsync(Bound);
    }

    [Fact]
    public async Task ADelayLongerThanATimerTakes_WaitsADayAtATime_InsteadOfThrowing()
    {
        // SessionAckOptions.MaxDelay accepts any positive delay; a timer refuses more than about 49 days, which ended the
        // ack loop with an ArgumentOutOfRangeException (the SemaphoreSlim before refused more than about 24 days).
        using (var onTheSystemClock = new AckWake(TimeProvider.System, _connection.Token))
        {
            var wait = onTheSystemClock.WaitAsync(TimeSpan.FromDays(60), onTheSystemClock.Now);
            Assert.False(wait.IsCompleted);
            onTheSystemClock.Set();
            await wait.AsTask().WaitAsync(Bound);
        }

        using var wake = new AckWake(_time, _connection.Token);
        var early = wake.WaitAsync(TimeSpan.FromDays(60), wake.Now);
        _time.Advance(TimeSpan.FromDays(1));
        await early.AsTask().WaitAsync(Bound); // an early wake: the loop looks at what is due and waits again
    }

    [Fact]
    public async Task ConnectionEnds_TheWaitThrows_AndSoDoesEveryLaterOne()
    {
        using var wake = new AckWake(_time, _connection.Token);
        var wait = wake.WaitAsync(Timeout.InfiniteTimeSpan, wake.Now).AsTask();

        await _connection.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Bound));
        wake.Set(); // a delivery after the end changes nothing
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wake.WaitAsync(TimeSpan.FromSeconds(1), wake.Now).AsTask());
    }

    [Fact]
    public void ManyWaits_AllocateNothingPerWait()
    {
        // The SemaphoreSlim it replaces allocated a state machine, a cancellation promise and a timer per timed wait
        // (473 B when set before its timeout, more when it times out). The system clock: the fake one allocates to arm its timers.
        using var wake = new AckWake(TimeProvider.System, _connection.Token);
        WaitAndSet(wake, 100); // the timer is made at the first timed wait

        var allocated = Allocations.FewestBytes(() => WaitAndSet(wake, 1_000));

        Assert.True(allocated < 1_000, $"{allocated} bytes for 1,000 waits (the fewest of three rounds)");
    }

    /// <summary>Timed waits (on the system clock), each set before it is awaited, on this thread alone.</summary>
    private static void WaitAndSet(AckWake wake, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var wait = wake.WaitAsync(TimeSpan.FromHours(1), wake.Now); // never reached: a stalled thread cannot race it
            wake.Set();
            wait.GetAwaiter().GetResult(); // completed by the set: returns at once
        }
    }
}
