using Lifeline.CloseCodes;
using Lifeline.Protocol;

namespace Lifeline.Client;

/// <summary>How one connection ended.</summary>
/// <remarks>Immutable; properties may be added in later versions.</remarks>
public sealed class CloseRecord
{
    /// <summary>The close code; 1006 when no Close frame arrived, 1005 when one arrived without a code; 1006 for <see cref="CloseCause.SessionInterrupted"/>.</summary>
    public required CloseCode Code { get; init; }

    /// <summary>The close reason text, if any.</summary>
    public string? Reason { get; init; }

    /// <summary>Who ended the connection.</summary>
    public required CloseInitiator Initiator { get; init; }

    /// <summary>Whether a Close frame arrived from the server.</summary>
    public bool CloseFrameReceived { get; init; }

    /// <summary>The exception behind a transport failure, if any.</summary>
    public Exception? Exception { get; init; }

    /// <summary>Why it ended, as a value to switch on.</summary>
    public required CloseCause Cause { get; init; }

    /// <summary>The same in words for people, e.g. "keep-alive timeout: no Pong within 15 s". Not for matching in code: use <see cref="Cause"/>.</summary>
    public required string Description { get; init; }

    /// <summary>The catalogue's explanation of the code.</summary>
    public CloseCodeInfo Explanation => Code.Info;

    /// <summary>The server's <c>retry-after-ms</c> hint in the reason, if any.</summary>
    public TimeSpan? ServerHint => RetryHint.TryParse(Reason, out var hint) ? hint : null;

    /// <inheritdoc />
    public override string ToString() => $"{Code} {Explanation.GetName(System.Globalization.CultureInfo.InvariantCulture)} ({Description})";
}
