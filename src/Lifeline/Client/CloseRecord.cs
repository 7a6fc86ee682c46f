using Lifeline.CloseCodes;
using Lifeline.Protocol;

namespace Lifeline.Client;

/// <summary>How one connection ended.</summary>
/// <param name="Code">The close code; 1006 when no Close frame arrived, 1005 when one arrived without a code.</param>
/// <param name="Reason">The close reason text, if any.</param>
/// <param name="Initiator">Who ended the connection.</param>
/// <param name="CloseFrameReceived">Whether a Close frame arrived from the server.</param>
/// <param name="Exception">The exception behind a transport failure, if any.</param>
/// <param name="Cause">A short human description, e.g. "keep-alive timeout" or "server closed the connection".</param>
public sealed record CloseRecord(
    CloseCode Code,
    string? Reason,
    CloseInitiator Initiator,
    bool CloseFrameReceived,
    Exception? Exception,
    string Cause)
{
    /// <summary>The catalogue's explanation of the code.</summary>
    public CloseCodeInfo Explanation => Code.Info;

    /// <summary>The server's <c>retry-after-ms</c> hint in the reason, if any.</summary>
    public TimeSpan? ServerHint => RetryHint.TryParse(Reason, out var hint) ? hint : null;

    /// <inheritdoc />
    public override string ToString() => $"{Code} {Explanation.GetName(System.Globalization.CultureInfo.InvariantCulture)} ({Cause})";
}
