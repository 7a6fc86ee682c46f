namespace Lifeline.Diagnostics.Raw;

/// <summary>
/// The peer broke the framing rules of RFC 6455 (or sent more than the reader accepts). Carries the close code the
/// reader answers with: 1002 Protocol Error, 1007 Invalid Payload Data, or 1009 Message Too Big.
/// </summary>
internal sealed class FrameException : Exception
{
    public const int ProtocolError = 1002;
    public const int InvalidPayload = 1007;
    public const int MessageTooBig = 1009;

    public FrameException()
        : this(ProtocolError, "protocol error")
    {
    }

    public FrameException(string message)
        : this(ProtocolError, message)
    {
    }

    public FrameException(string message, Exception innerException)
        : base(message, innerException)
    {
        CloseCode = ProtocolError;
    }

    public FrameException(int closeCode, string message)
        : base(message)
    {
        CloseCode = closeCode;
    }

    /// <summary>The code to close with: 1002 or 1009.</summary>
    public int CloseCode { get; }
}
