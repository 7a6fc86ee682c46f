using System.Net.WebSockets;
using System.Text;

namespace Lifeline;

/// <summary>One whole WebSocket message (fragments already joined).</summary>
public sealed class LifelineMessage
{
    /// <summary>Creates a message.</summary>
    public LifelineMessage(WebSocketMessageType type, ReadOnlyMemory<byte> data)
    {
        if (type == WebSocketMessageType.Close)
        {
            throw new ArgumentException("A Close frame is not a message.", nameof(type));
        }

        Type = type;
        Data = data;
    }

    /// <summary>Text or binary.</summary>
    public WebSocketMessageType Type { get; private set; }

    /// <summary>The payload.</summary>
    public ReadOnlyMemory<byte> Data { get; private set; }

    /// <summary>The payload decoded as UTF-8.</summary>
    public string Text => Encoding.UTF8.GetString(Data.Span);

    /// <summary>
    /// Makes this message the payload a session frame carries (<paramref name="type"/>, from
    /// <paramref name="headerLength"/> on). Only for the server's session carrier, the sole holder of the messages of a
    /// session socket: it hands the same object on to the session's handler rather than make a second one per message.
    /// </summary>
    internal void UnwrapSessionPayload(WebSocketMessageType type, int headerLength)
    {
        Type = type;
        Data = Data[headerLength..];
    }

    /// <inheritdoc />
    public override string ToString() => Type == WebSocketMessageType.Text ? Text : $"<{Data.Length} bytes>";
}
