using System.Net.WebSockets;

namespace Lifeline.AspNetCore;

internal static class CloseHandshake
{
    /// <summary>After our Close frame: reads (and discards) until the client's Close arrives or the token ends the wait.</summary>
    public static async Task AwaitReplyAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var scratch = new byte[1024];
        while (socket.State == WebSocketState.CloseSent)
        {
            var result = await socket.ReceiveAsync(scratch.AsMemory(), cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return;
            }
        }
    }
}
