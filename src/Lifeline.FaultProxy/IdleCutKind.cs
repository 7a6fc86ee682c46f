namespace Lifeline.FaultProxy;

/// <summary>How a link that stayed idle too long is cut, mimicking the middleboxes that do it.</summary>
public enum IdleCutKind
{
    /// <summary>Both sides get a TCP RST at the deadline (a middlebox that tears the flow down actively).</summary>
    Reset,

    /// <summary>Both sides get a FIN without any WebSocket Close frame (a proxy such as nginx timing out the read).</summary>
    Fin,

    /// <summary>The link stays open but nothing crosses it any more (a load balancer that drops the flow silently, as Azure's does).</summary>
    Silent,

    /// <summary>
    /// The flow is forgotten silently at the deadline, and the next packet from either side gets a TCP RST for both (a
    /// stateful firewall or NAT after its timeout): the cut shows only when someone sends.
    /// </summary>
    ResetOnNextPacket,
}
