namespace Lifeline.CloseCodes;

/// <summary>The ranges RFC 6455 section 7.4.2 divides the close-code space into.</summary>
public enum CloseCodeRange
{
    /// <summary>0-999: not used by the protocol; never valid on the wire.</summary>
    NotUsed,

    /// <summary>1000-2999: defined by the WebSocket protocol and its extensions (1016-2999 unassigned).</summary>
    Protocol,

    /// <summary>3000-3999: registered with IANA by libraries, frameworks and applications.</summary>
    Registered,

    /// <summary>4000-4999: private use, agreed between the two endpoints.</summary>
    Private,

    /// <summary>5000 and above: outside every range RFC 6455 defines.</summary>
    Invalid,
}
