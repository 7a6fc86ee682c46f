namespace Lifeline.FaultProxy;

/// <summary>Which way bytes travel through a link.</summary>
[Flags]
public enum Direction
{
    /// <summary>From the client that connected to the proxy towards the upstream server.</summary>
    Upstream = 1,

    /// <summary>From the upstream server back to the client.</summary>
    Downstream = 2,

    /// <summary>Both ways.</summary>
    Both = Upstream | Downstream,
}
