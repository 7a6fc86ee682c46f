using Lifeline.Diagnostics.Probe;
using Lifeline.Diagnostics.Raw;
using Lifeline.Diagnostics.Tests.Infrastructure;

namespace Lifeline.Diagnostics.Tests.Raw;

public sealed class RawSessionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task CloseIfOpenAsync_ServerAnswersLate_WaitsForTheServersClose()
    {
        // Before, the socket was closed right after the client's Close frame; Kestrel could then cancel the handler's
        // receive on the FIN before it read that frame, and the server recorded 1006 for a clean close.
        await using var server = await TestServer.StartAsync();
        await using var session = await OpenAsync(server.Uri("/slow-close/300"));

        await session.CloseIfOpenAsync(Bound);

        Assert.True(session.Ended.IsCompleted, "returned before the server answered the Close frame");
        var end = await session.Ended;
        Assert.Equal(ConnectionEndKind.CloseFrame, end.Kind);
        Assert.Equal((1000, "answer"), (end.CloseCode, end.CloseReason));
    }

    [Fact]
    public async Task CloseIfOpenAsync_ServerNeverAnswers_ReturnsAtTheBound()
    {
        // A server that reads nothing must not hold the caller past its bound.
        await using var server = await TestServer.StartAsync();
        await using var session = await OpenAsync(server.Uri("/slow-close/600000"));

        await session.CloseIfOpenAsync(TimeSpan.FromMilliseconds(200)).WaitAsync(Bound);

        Assert.False(session.Ended.IsCompleted);
    }

    private static async Task<RawSession> OpenAsync(Uri uri)
    {
        var (socket, failure, _) = await RawWebSocket.ConnectAsync(uri, new RawConnectOptions(Bound), TimeProvider.System, CancellationToken.None);
        Assert.True(socket is not null, failure?.Message);
        return new RawSession(socket, TimeProvider.System);
    }
}
