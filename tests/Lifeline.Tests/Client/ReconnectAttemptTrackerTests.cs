using Lifeline.Client;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.Tests.Client;

public class ReconnectAttemptTrackerTests
{
    [Fact]
    public void Disconnected_AfterStablePeriod_ResetsAttemptAndElapsed()
    {
        var time = new FakeTimeProvider();
        var tracker = new ReconnectAttemptTracker(time, TimeSpan.FromSeconds(10));
        tracker.AttemptFailed();
        tracker.AttemptFailed();
        Assert.Equal(3, tracker.Attempt);

        tracker.Connected();
        time.Advance(TimeSpan.FromSeconds(10));
        var upFor = tracker.Disconnected(carriedMessages: false);

        Assert.Equal(TimeSpan.FromSeconds(10), upFor);
        Assert.Equal(1, tracker.Attempt);
        Assert.Equal(TimeSpan.Zero, tracker.Elapsed);
    }

    [Fact]
    public void Disconnected_BeforeStablePeriod_CountsAsAFailedAttempt()
    {
        var time = new FakeTimeProvider();
        var tracker = new ReconnectAttemptTracker(time, TimeSpan.FromSeconds(10));
        time.Advance(TimeSpan.FromSeconds(3));
        tracker.Connected();
        time.Advance(TimeSpan.FromSeconds(9));

        tracker.Disconnected(carriedMessages: false);

        Assert.Equal(2, tracker.Attempt);
        Assert.Equal(TimeSpan.FromSeconds(12), tracker.Elapsed);
    }

    [Fact]
    public void Disconnected_ShortButCarriedMessages_IsASuccessAndResets()
    {
        var time = new FakeTimeProvider();
        var tracker = new ReconnectAttemptTracker(time, TimeSpan.FromSeconds(10));
        for (var flap = 0; flap < 8; flap++)
        {
            tracker.Connected();
            time.Advance(TimeSpan.FromSeconds(3));
            tracker.Disconnected(carriedMessages: true);
            Assert.Equal(1, tracker.Attempt);
            Assert.Equal(TimeSpan.Zero, tracker.Elapsed);
            time.Advance(TimeSpan.FromMilliseconds(500));
        }
    }

    [Fact]
    public void Disconnected_AcceptedAndClosedAtOnce_KeepsGrowing()
    {
        var time = new FakeTimeProvider();
        var tracker = new ReconnectAttemptTracker(time, TimeSpan.FromSeconds(10));
        for (var i = 0; i < 5; i++)
        {
            tracker.Connected();
            tracker.Disconnected(carriedMessages: false);
        }

        Assert.Equal(6, tracker.Attempt);
    }

    [Fact]
    public void Disconnected_GreetedAndClosedAtOnce_KeepsGrowing()
    {
        // A server that sends a greeting and closes at once (its database is down, say): the message must not make each
        // connection a success, or every client retries at attempt 1's delay for good.
        var time = new FakeTimeProvider();
        var tracker = new ReconnectAttemptTracker(time, TimeSpan.FromSeconds(10));
        for (var i = 0; i < 5; i++)
        {
            tracker.Connected();
            time.Advance(TimeSpan.FromMilliseconds(20));
            tracker.Disconnected(carriedMessages: true);
        }

        Assert.Equal(6, tracker.Attempt);
    }
}
