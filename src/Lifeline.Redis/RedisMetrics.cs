using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Lifeline.Redis;

/// <summary>The Redis instruments of the meter "Lifeline" (see <see cref="Diagnostics.LifelineMetrics"/>).</summary>
internal static class RedisMetrics
{
    internal static readonly Meter Meter = new(Diagnostics.LifelineMetrics.MeterName, typeof(RedisMetrics).Assembly.GetName().Version?.ToString());

    internal static readonly Counter<long> Errors =
        Meter.CreateCounter<long>("lifeline.redis.errors", "{error}", "Redis operations that failed, tagged with the operation and the kind (timeout, connection, server).");

    internal static readonly Counter<long> FencedWrites =
        Meter.CreateCounter<long>("lifeline.redis.fenced_writes", "{write}", "Writes refused because another node owns the session now.");

    internal static readonly Counter<long> FanoutDropped =
        Meter.CreateCounter<long>("lifeline.redis.fanout_dropped", "{message}", "Fan-out messages dropped on receipt, tagged with the reason (queue_full, malformed).");

    internal static TagList ErrorTags(string operation, string kind) => new() { { "operation", operation }, { "kind", kind } };
}
