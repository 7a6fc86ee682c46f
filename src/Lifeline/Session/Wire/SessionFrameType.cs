namespace Lifeline.Session.Wire;

/// <summary>The kind of a <c>lifeline.v1</c> frame. The value is the first byte on the wire (binary data; text data is 0x07).</summary>
public enum SessionFrameType : byte
{
    /// <summary>0x01, client to server, first frame: start a new session or resume one.</summary>
    Hello = 0x01,

    /// <summary>0x02, server to client: a new session started (id, token, window, limits).</summary>
    Welcome = 0x02,

    /// <summary>0x03, server to client: the session resumed; the server states the last sequence it received.</summary>
    Resumed = 0x03,

    /// <summary>0x04, either direction: the session cannot continue losslessly; says what was lost.</summary>
    SessionLost = 0x04,

    /// <summary>0x05, either direction: a cumulative acknowledgement alone.</summary>
    Ack = 0x05,

    /// <summary>0x06 (binary payload) or 0x07 (text payload), either direction: a numbered application message.</summary>
    Data = 0x06,
}
