namespace Lifeline.FaultProxy;

/// <summary>How a link that stayed idle too long is cut, mimicking the middleboxes that do it.</summary>
public enum IdleCutKind
{
    /// <summary>Both sides get a TCP RST (a firewall or NAT that forgets the flow and rejects the next packet).</summary>
    Reset,

    /// <summary>Both sides get a FIN without any WebSocket Close frame (a proxy such as nginx timing out the read).</summary>
    Fin,

    /// <summary>The link stays open but nothing crosses it any more (a load balancer that drops the flow silently, as Azure's does).</summary>
    Silent,
}
