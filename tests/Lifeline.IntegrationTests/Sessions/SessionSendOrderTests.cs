using System.Buffers;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Sessions;

/// <summary>Session Data frames go on the wire in sequence order, whichever send path numbered them.</summary>
[Collection(SerialCollection.Name)]
public sealed class SessionSendOrderTests
{
    private static string NewDrainFile() => Path.Combine(Path.GetTempPath(), $"lifeline-test-{Guid.NewGuid():N}.bin");

    [Fact]
    public async Task BroadcastWhileANewSessionIsBeingWelcomed_TheClientsDataStartsAt1()
    {
        // A new session was published before its socket was attached: a broadcast in between numbered a message 1 that no
        // socket carried, and the client's first Data was 2, a gap it closes with 1002 (a stop).
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile());
        var early = -1;
        host.Sessions.BeforeNewSessionWelcomeForTest = async () => early = await host.Sessions.SendToAllAsync("early"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text);
        using var socket = await SessionBadInputTests.ConnectAsync(host.Uri("/hold"));
        await SessionBadInputTests.HelloAsync(socket);
        host.Sessions.BeforeNewSessionWelcomeForTest = null;
        await host.Sessions.SendToAllAsync("later"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text);

        var sequences = new List<long>();
        var buffer = new byte[1024];
        string? last = null;
        while (last != "later")
        {
            var received = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(15));
            Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Binary, received.MessageType);
            Assert.Equal(Lifeline.Session.Wire.SessionFrameError.None, Lifeline.Session.Wire.SessionFrameReader.TryRead(
                new ReadOnlySequence<byte>(buffer.AsMemory(0, received.Count)), int.MaxValue, out var header, out var payload));
            if (header.Type == Lifeline.Session.Wire.SessionFrameType.Data)
            {
                sequences.Add(header.Sequence);
                last = System.Text.Encoding.UTF8.GetString(payload.ToArray());
            }
        }

        Assert.Equal([1L], sequences);
        Assert.Equal(0, early); // the session was not there yet
    }

    [Fact]
    public async Task QueuedSendStartsItsWriterWhileADirectSendIsAboutToNumberItsMessage_BothArriveAndTheClientStaysConnected()
    {
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile());
        await using var client = new LifelineClient(SessionResumeTests.SessionClient(host.Uri("/echo")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await client.SendTextAsync("first");
        Assert.Equal("first", (await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Text);

        // The direct send below has checked that nothing is queued and holds the send lock. Now a send with a token
        // queues its message and starts the queue's writer, which numbers that message. Before, the writer numbered it
        // without the send lock (sequence N), the direct send then took N+1 and wrote it first, and the server closed
        // the connection for a sequence gap (1002), which ends the client for good.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Task? queued = null;
        var before = client.LastSequenceNumberedForTest;
        client.BeforeDirectSessionAppendForTest = () =>
        {
            client.BeforeDirectSessionAppendForTest = null;
            queued = client.SendTextAsync("queued", cts.Token).AsTask();

            // Give the writer (on the thread pool) a chance to number its message first, as it did before the fix; with
            // the fix it waits for the send lock instead, and this wait runs out.
            SpinWait.SpinUntil(() => client.LastSequenceNumberedForTest != before, TimeSpan.FromSeconds(1));
        };
        await client.SendTextAsync("direct");
        Assert.NotNull(queued);
        await queued!.WaitAsync(TimeSpan.FromSeconds(30));

        var echoes = new List<string>
        {
            (await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Text,
            (await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Text,
        };
        Assert.Equal(["direct", "queued"], echoes.Order(StringComparer.Ordinal));
        Assert.Equal(LifelineClientState.Connected, client.State);

        await client.SendTextAsync("after");
        Assert.Equal("after", (await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Text);
    }

    [Fact]
    public async Task SendsNotAwaitedWhileTheReplayBufferIsFull_GoOutInTheOrderOfTheCalls()
    {
        // Room for two unacknowledged messages: the third call on finds the buffer full and waits for an ack. Before, each
        // such send waited on its own, and all of them woke at the same ack and raced for the socket (and a call made
        // after the ack could go straight out), so the server got them out of call order.
        const int count = 300;
        await using var host = await SessionTestHost.StartAsync(new NumberedServerLog(), NewDrainFile());
        var options = SessionResumeTests.SessionClient(host.Uri("/echo"));
        options.Session!.Replay.MaxMessages = 2;
        options.SendQueue.MaxMessages = 10; // the sends queued behind the full replay buffer wait for room here too (mode Wait)
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));

        var sends = new List<Task>(count);
        for (var i = 0; i < count; i++)
        {
            sends.Add(client.SendAsync(SessionTestHost.Number(i), System.Net.WebSockets.WebSocketMessageType.Binary).AsTask());
        }

        await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(60));
        var echoes = new List<int>(count);
        for (var i = 0; i < count; i++)
        {
            echoes.Add(SessionTestHost.Number((await Wait.ReadAsync(client.Messages, TimeSpan.FromSeconds(30))).Data));
        }

        Assert.Equal(Enumerable.Range(0, count), echoes);
        Assert.Equal(1, client.Statistics.Connects);
    }
}
