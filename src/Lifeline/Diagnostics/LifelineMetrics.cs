using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Lifeline.Diagnostics;

/// <summary>
/// The instruments of the meter "Lifeline" (OpenTelemetry picks them up with <c>AddMeter("Lifeline")</c>).
/// Client instruments start with <c>lifeline.client.</c>, server ones with <c>lifeline.server.</c>.
/// </summary>
public static class LifelineMetrics
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "Lifeline";

    internal static readonly Meter Meter = new(MeterName, typeof(LifelineMetrics).Assembly.GetName().Version?.ToString());

    /// <summary>The tag name for close codes; its value is always an <see cref="int"/>, on the client and the server alike.</summary>
    public const string CloseCodeTagName = "close_code";

    // An attempt that failed before any connection has no close code: the tag is left out rather than faked.
    internal static TagList CloseCodeTag(int? code) => code is { } value ? new() { { CloseCodeTagName, value } } : default;
}
