using Lifeline.Session;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.Tests.Session;

public sealed class CoarseClockTests
{
    [Fact]
    public void FakeTime_IsReadAsGiven()
    {
        var time = new FakeTimeProvider();
        var clock = new CoarseClock(time);
        var stamp = clock.Now();

        time.Advance(TimeSpan.FromMilliseconds(250));

        Assert.Equal(TimeSpan.FromMilliseconds(250), clock.Since(stamp));
    }

    [Fact]
    public void SystemTime_MeasuresInTheSameUnitsItStamps()
    {
        // The system clock's stamps are tick counts in milliseconds: the elapsed time must come out in those units too
        // (a stamp of one clock read with another would be off by orders of magnitude).
        var clock = new CoarseClock(TimeProvider.System);
        var stamp = clock.Now();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (System.Diagnostics.Stopwatch.GetElapsedTime(started) < TimeSpan.FromMilliseconds(50))
        {
            Thread.SpinWait(1000);
        }

        var elapsed = clock.Since(stamp);

        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(30), TimeSpan.FromMinutes(1));
    }
}
