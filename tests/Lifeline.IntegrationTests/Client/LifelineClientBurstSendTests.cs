using System.Globalization;
using System.Net.WebSockets;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Client;

/// <summary>A sender that streams: its frames are gathered into few writes to the connection (see WriteBehind).</summary>
public sealed class LifelineClientBurstSendTests
{
    [Fact]
    public async Task ABurstOfSendsWithoutReading_ArrivesWhole_InOrder_InFarFewerWrites_AndTheCloseComesLast()
    {
        await using var server = await TestWebSocketServer.StartAsync();
        await using var client = new LifelineClient(ClientTestOptions.Fast(server.Uri("/silent")));
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        const int Count = 5000;

        // The first burst's writes wait until all of it was sent, as they would behind a slow link: how many frames
        // gather into one write otherwise depends on how the two threads happen to run (17 to 926 writes in a quiet run;
        // 2,907 once, with other test processes on both cores).
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.HoldLinkWritesForTest(release.Task);
        await SendNumbersAsync(client, 0, Count);
        release.SetResult();
        // The sends completed once their frames were gathered (5,000 of them, about 49 KB, fit in the buffer): the worker
        // writes them after, so the count is read once the server has them all.
        await Wait.UntilAsync(() => server.Received.Count >= Count, TimeSpan.FromSeconds(30), "every message at the server");
        var linkWrites = client.LinkWritesBehind;
        await SendNumbersAsync(client, Count, Count); // and a second burst, stopped right after: its Close must not overtake it
        await client.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => !server.ClosesReceived.IsEmpty, TimeSpan.FromSeconds(30), "the client's Close at the server");

        Assert.Equal(Enumerable.Range(0, 2 * Count).Select(i => i.ToString(CultureInfo.InvariantCulture)), server.Received);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, Assert.Single(server.ClosesReceived).Status);
        // The first message goes out at once, the second starts the worker, the rest gather behind it: two writes, and
        // a few more for keep-alive pings that came meanwhile. Without the write-behind, one write per message.
        Assert.InRange(linkWrites, 1, 10);
    }

    private static async Task SendNumbersAsync(LifelineClient client, int first, int count)
    {
        for (var i = first; i < first + count; i++)
        {
            await client.SendTextAsync(i.ToString(CultureInfo.InvariantCulture)).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }
}
