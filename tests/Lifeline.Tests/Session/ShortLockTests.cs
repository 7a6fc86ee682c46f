using Lifeline.Session;

namespace Lifeline.Tests.Session;

public class ShortLockTests
{
    private sealed class Counter
    {
        public long Value;
    }

    [Fact]
    public async Task Enter_FromTwoThreadsAtOnce_LetsOneInAtATime()
    {
        var gate = new ShortLock();
        var counter = new Counter();
        const int PerThread = 200_000;
        using var start = new Barrier(2);

        void Work()
        {
            start.SignalAndWait();
            for (var i = 0; i < PerThread; i++)
            {
                using (gate.Enter())
                {
                    // A read, then a write: two threads inside at once would lose increments.
                    var seen = counter.Value;
                    counter.Value = seen + 1;
                }
            }
        }

        await Task.WhenAll(Task.Factory.StartNew(Work, TaskCreationOptions.LongRunning), Task.Factory.StartNew(Work, TaskCreationOptions.LongRunning));

        Assert.Equal(2L * PerThread, counter.Value);
    }

    [Fact]
    public async Task Enter_AfterTheScopeWasDisposedByAnException_IsFreeAgain()
    {
        var gate = new ShortLock();
        Action throwInside = () =>
        {
            using (gate.Enter())
            {
                throw new InvalidOperationException("inside");
            }
        };

        Assert.Throws<InvalidOperationException>(throwInside);

        var entered = Task.Run(() =>
        {
            using (gate.Enter())
            {
                return true;
            }
        });
        Assert.True(await entered.WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
