using Lifeline.Client;

namespace Lifeline.Tests.Client;

public sealed class ReaderGateTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    [Fact]
    public void TryEnter_OnlyWhenNobodyIsInside()
    {
        var gate = new ReaderGate();

        Assert.True(gate.TryEnter());
        Assert.False(gate.TryEnter());
        gate.Exit();
        Assert.True(gate.TryEnter());
    }

    [Fact]
    public async Task EnterAsync_WaitersGetTheirTurnsInOrder_AndTryEnterDoesNotJumpTheQueue()
    {
        var gate = new ReaderGate();
        Assert.True(gate.TryEnter());
        var order = new List<int>();
        var second = EnterThenRecordAsync(gate, order, 2);
        var third = EnterThenRecordAsync(gate, order, 3);

        Assert.False(second.IsCompleted);
        gate.Exit();
        Assert.False(gate.TryEnter()); // the third reader still waits
        await second.WaitAsync(Bound);
        await third.WaitAsync(Bound);

        Assert.Equal([2, 3], order);
        Assert.True(gate.TryEnter());
    }

    [Fact]
    public async Task EnterAsync_CancelledWhileWaiting_TheReaderBehindStillGetsItsTurn()
    {
        var gate = new ReaderGate();
        Assert.True(gate.TryEnter());
        using var cancel = new CancellationTokenSource();
        var cancelled = gate.EnterAsync(cancel.Token).AsTask();
        var behind = gate.EnterAsync(CancellationToken.None).AsTask();

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Bound));
        Assert.False(behind.IsCompleted);
        gate.Exit();

        await behind.WaitAsync(Bound);
        gate.Exit();

        // The cancelled reader's turn comes after that one and is passed straight on (asynchronously): then it is free.
        using var deadline = new CancellationTokenSource(Bound);
        while (!gate.TryEnter())
        {
            await Task.Delay(10, deadline.Token);
        }
    }

    private static async Task EnterThenRecordAsync(ReaderGate gate, List<int> order, int reader)
    {
        await gate.EnterAsync(CancellationToken.None);
        lock (order)
        {
            order.Add(reader);
        }

        gate.Exit();
    }
}
