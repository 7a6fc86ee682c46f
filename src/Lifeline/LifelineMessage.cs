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
    public WebSocketMessageType Type { get; }

    /// <summary>The payload.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The payload decoded as UTF-8.</summary>
    public string Text => Encoding.UTF8.GetString(Data.Span);

    /// <inheritdoc />
    public override string ToString() => Type == WebSocketMessageType.Text ? Text : $"<{Data.Length} bytes>";
}
