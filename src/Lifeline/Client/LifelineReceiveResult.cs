using System.Net.WebSockets;

namespace Lifeline.Client;

/// <summary>What <see cref="LifelineClient.ReceiveAsync(Memory{byte}, CancellationToken)"/> did.</summary>
public enum LifelineReceiveStatus
{
    /// <summary>A whole message was copied into the destination; <see cref="LifelineReceiveResult.Count"/> bytes of it are the message.</summary>
    Message = 0,

    /// <summary>
    /// The next message does not fit: nothing was copied and the message stays first in line.
    /// <see cref="LifelineReceiveResult.Count"/> is its length; call again with at least that much room.
    /// </summary>
    DestinationTooSmall = 1,

    /// <summary>The client is closed and every received message was read; no message will follow.</summary>
    Closed = 2,
}

/// <summary>The outcome of one <see cref="LifelineClient.ReceiveAsync(Memory{byte}, CancellationToken)"/>.</summary>
/// <param name="Status">Whether a message was copied, did not fit, or the client is closed.</param>
/// <param name="Count">The message's length: bytes copied for <see cref="LifelineReceiveStatus.Message"/>, bytes needed for <see cref="LifelineReceiveStatus.DestinationTooSmall"/>, 0 when closed.</param>
/// <param name="MessageType">Text or Binary; Binary when closed.</param>
public readonly record struct LifelineReceiveResult(LifelineReceiveStatus Status, int Count, WebSocketMessageType MessageType);
