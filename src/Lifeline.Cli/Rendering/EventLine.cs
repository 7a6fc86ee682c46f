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
    [property: JsonPropertyName("cause")] string? Cause = null);
