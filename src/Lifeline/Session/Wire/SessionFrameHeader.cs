namespace Lifeline.Session.Wire;

/// <summary>
/// Everything of a decoded frame except a Data frame's payload. Read the fields that belong to <see cref="Type"/>:
/// <see cref="Sequence"/>, <see cref="Ack"/> and <see cref="IsText"/> for Data; <see cref="Ack"/> for Ack;
/// <see cref="Hello"/>, <see cref="Welcome"/>, <see cref="Resumed"/> or <see cref="SessionLost"/> for the others.
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
public readonly struct SessionFrameHeader
{
    private readonly SessionId _sessionId;
    private readonly ResumeToken _token;
    private readonly long _a;
    private readonly long _b;
    private readonly long _c;
    private readonly long _d;
    private readonly long _e;
    private readonly byte _flag;

    internal SessionFrameHeader(SessionFrameType type, int headerLength, byte flag, long a, long b, long c = 0, long d = 0, long e = 0,
        SessionId sessionId = default, ResumeToken token = default)
    {
        Type = type;
        HeaderLength = headerLength;
        _flag = flag;
        _a = a;
        _b = b;
        _c = c;
        _d = d;
        _e = e;
        _sessionId = sessionId;
        _token = token;
    }

    /// <summary>The frame type.</summary>
    public SessionFrameType Type { get; }

    /// <summary>How many bytes the header took; a Data frame's payload starts here.</summary>
    public int HeaderLength { get; }

    /// <summary>Data: the message's sequence number (1 or more).</summary>
    public long Sequence => Type == SessionFrameType.Data ? _a : 0;

    /// <summary>Data and Ack: the cumulative acknowledgement (the last sequence the sender received; 0 for none).</summary>
    public long Ack => Type is SessionFrameType.Data or SessionFrameType.Ack ? _b : 0;

    /// <summary>Data: true when the payload is UTF-8 text (frame type byte 0x07), false for binary (0x06).</summary>
    public bool IsText => Type == SessionFrameType.Data && _flag != 0;

    /// <summary>The Hello fields.</summary>
    /// <exception cref="InvalidOperationException">The frame is not a Hello.</exception>
    public HelloFrame Hello => Type == SessionFrameType.Hello
        ? new HelloFrame((int)_a, _flag != 0, _sessionId, _token, _b)
        : throw WrongType(SessionFrameType.Hello);

    /// <summary>The Welcome fields.</summary>
    /// <exception cref="InvalidOperationException">The frame is not a Welcome.</exception>
    public WelcomeFrame Welcome => Type == SessionFrameType.Welcome
        ? new WelcomeFrame((int)_a, _sessionId, _token, TimeSpan.FromMilliseconds(_b), (int)_c, (int)_d, _e)
        : throw WrongType(SessionFrameType.Welcome);

    /// <summary>The Resumed fields.</summary>
    /// <exception cref="InvalidOperationException">The frame is not a Resumed.</exception>
    public ResumedFrame Resumed => Type == SessionFrameType.Resumed
        ? new ResumedFrame(_a, _b)
        : throw WrongType(SessionFrameType.Resumed);

    /// <summary>The SessionLost fields.</summary>
    /// <exception cref="InvalidOperationException">The frame is not a SessionLost.</exception>
    public SessionLostFrame SessionLost => Type == SessionFrameType.SessionLost
        ? new SessionLostFrame((SessionLostReason)_flag, _a, new SequenceRange(_b, _c))
        : throw WrongType(SessionFrameType.SessionLost);

    private InvalidOperationException WrongType(SessionFrameType wanted) =>
        new($"The frame is a {Type} frame, not a {wanted} frame.");
}

/// <summary>A decoded frame read from one contiguous buffer: its header and, for Data, its payload (a slice of the input).</summary>
public readonly ref struct SessionFrame
{
    internal SessionFrame(SessionFrameHeader header, ReadOnlySpan<byte> payload)
    {
        Header = header;
        Payload = payload;
    }

    /// <summary>The decoded fields.</summary>
    public SessionFrameHeader Header { get; }

    /// <summary>Data: the application payload (a slice of the buffer that was read; valid as long as it is). Empty for other types.</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>The frame type.</summary>
    public SessionFrameType Type => Header.Type;
}
