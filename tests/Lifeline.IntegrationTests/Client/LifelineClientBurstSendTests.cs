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

        await SendNumbersAsync(client, 0, Count);
        // The sends completed once their frames were gathered (5,000 of them fit in the buffer): the worker may write
        // them later, so the count is read once the server has them all.
        await Wait.UntilAsync(() => server.Received.Count >= Count, TimeSpan.FromSeconds(30), "every message at the server");
        var linkWrites = client.LinkWritesBehind;
        await SendNumbersAsync(client, Count, Count); // and a second burst, stopped right after: its Close must not overtake it
        await client.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => !server.ClosesReceived.IsEmpty, TimeSpan.FromSeconds(30), "the client's Close at the server");

        Assert.Equal(Enumerable.Range(0, 2 * Count).Select(i => i.ToString(CultureInfo.InvariantCulture)), server.Received);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, Assert.Single(server.ClosesReceived).Status);
        Assert.InRange(linkWrites, 1, Count / 2); // one write per message without the write-behind
    }

    private static async Task SendNumbersAsync(LifelineClient client, int first, int count)
    {
        for (var i = first; i < first + count; i++)
        {
            await client.SendTextAsync(i.ToString(CultureInfo.InvariantCulture)).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }
}
