using Lifeline.CloseCodes;

namespace Lifeline.Session.Wire;

/// <summary>Why a received frame could not be read. The reader never throws; it returns one of these.</summary>
public enum SessionFrameError
{
    /// <summary>The frame was read.</summary>
    None = 0,

    /// <summary>The message had no bytes.</summary>
    Empty,

    /// <summary>The first byte is not a known frame type.</summary>
    UnknownType,

    /// <summary>The message ended inside a field.</summary>
    Truncated,

    /// <summary>A varint ran past 10 bytes or past 64 bits.</summary>
    VarintOverflow,

    /// <summary>A number does not fit its field (a sequence above 2^63-1, a limit above its maximum).</summary>
    ValueOutOfRange,

    /// <summary>A field holds a value the protocol forbids (version 0, an unknown resume mode, sequence 0 on data, ...).</summary>
    InvalidField,

    /// <summary>Bytes follow the last field of a frame that has no payload.</summary>
    TrailingBytes,

    /// <summary>The message is longer than the receiver's frame limit.</summary>
    Oversized,
}

/// <summary>What to do about a <see cref="SessionFrameError"/>.</summary>
public static class SessionFrameErrorExtensions
{
    /// <summary>The close code for the error: 1009 for <see cref="SessionFrameError.Oversized"/>, 1002 for every other error.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="SessionFrameError.None"/> is not an error.</exception>
    public static CloseCode ToCloseCode(this SessionFrameError error) => error switch
    {
        SessionFrameError.None => throw new ArgumentOutOfRangeException(nameof(error), error, "None is not an error."),
        SessionFrameError.Oversized => CloseCode.MessageTooBig,
        _ => CloseCode.ProtocolError,
    };

    /// <summary>A short English text for logs and close reasons (well under the 123-byte limit of a reason).</summary>
    public static string Describe(this SessionFrameError error) => error switch
    {
        SessionFrameError.None => "no error",
        SessionFrameError.Empty => "empty frame",
        SessionFrameError.UnknownType => "unknown frame type",
        SessionFrameError.Truncated => "truncated frame",
        SessionFrameError.VarintOverflow => "varint overflow",
        SessionFrameError.ValueOutOfRange => "value out of range",
        SessionFrameError.InvalidField => "invalid field",
        SessionFrameError.TrailingBytes => "trailing bytes",
        SessionFrameError.Oversized => "frame too big",
        _ => "malformed frame",
    };
}
