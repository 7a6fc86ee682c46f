namespace Lifeline.Client;

/// <summary>Who ended a connection.</summary>
public enum CloseInitiator
{
    /// <summary>The server sent a Close frame.</summary>
    Server,

    /// <summary>This client closed it (a user stop, or a protocol rule such as the maximum message size).</summary>
    Client,

    /// <summary>Nobody closed it: the transport failed (reset, FIN without Close frame, keep-alive timeout, watchdog).</summary>
    Transport,
}
