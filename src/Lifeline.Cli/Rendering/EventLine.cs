using System.Text.Json.Serialization;

namespace Lifeline.Cli.Rendering;

/// <summary>One event of <c>lifeline connect --json</c>: exactly one JSON object per line, every field always present.</summary>
internal sealed record EventLine(
    [property: JsonPropertyName("time")] DateTimeOffset Time,
    [property: JsonPropertyName("event")] string Event,
    [property: JsonPropertyName("code")] int? Code = null,
    [property: JsonPropertyName("reason")] string? Reason = null,
    [property: JsonPropertyName("closeFrameReceived")] bool? CloseFrameReceived = null,
    [property: JsonPropertyName("delayMs")] long? DelayMs = null,
    [property: JsonPropertyName("attempt")] int? Attempt = null,
    [property: JsonPropertyName("data")] string? Data = null,
    [property: JsonPropertyName("binary")] bool? Binary = null,
    [property: JsonPropertyName("cause")] string? Cause = null,
    [property: JsonPropertyName("session")] SessionInfo? Session = null);

/// <summary>
/// The session part of an event (<c>connect --session</c>): on <c>connected</c>, <c>resumed</c> and <c>session-lost</c>;
/// null otherwise. Every field is always present, null when it does not apply to the event.
/// </summary>
internal sealed record SessionInfo(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("resumed")] bool? Resumed = null,
    [property: JsonPropertyName("replayedToServer")] long? ReplayedToServer = null,
    [property: JsonPropertyName("replayedFromServer")] long? ReplayedFromServer = null,
    [property: JsonPropertyName("lostReason")] string? LostReason = null,
    [property: JsonPropertyName("refused")] bool? Refused = null,
    [property: JsonPropertyName("lostByServer")] bool? LostByServer = null,
    [property: JsonPropertyName("serverLastReceived")] long? ServerLastReceived = null,
    [property: JsonPropertyName("lostFromServer")] SequenceSpan? LostFromServer = null,
    [property: JsonPropertyName("unconfirmedToServer")] SequenceSpan? UnconfirmedToServer = null);

/// <summary>A range of sequence numbers: <c>first</c> to <c>last</c>, <c>count</c> of them (all 0 when empty).</summary>
internal sealed record SequenceSpan(
    [property: JsonPropertyName("first")] long First,
    [property: JsonPropertyName("last")] long Last,
    [property: JsonPropertyName("count")] long Count)
{
    public static SequenceSpan From(Lifeline.Session.SequenceRange range) =>
        range.IsEmpty ? new(0, 0, 0) : new(range.First, range.Last, range.Count);

    public override string ToString() => Count == 0
        ? "none"
        : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{First}-{Last} ({Count})");
}
