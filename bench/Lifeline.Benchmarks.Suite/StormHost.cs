using System.Globalization;

namespace Lifeline.Benchmarks.Suite;

/// <summary>
/// How the restart storm starts a <see cref="HostProcess"/>: on a fixed port (the new process takes the old one's), with
/// the session drain file the two processes share, counting upgrades and numbered messages
/// (<see cref="HostCounters"/>), and for the new process the Stopwatch timestamp its upgrade buckets count from.
/// </summary>
internal sealed record StormHost(int Port, string DrainFile, long? BucketOrigin = null)
{
    public IEnumerable<string> Arguments()
    {
        yield return "--port";
        yield return Port.ToString(CultureInfo.InvariantCulture);
        yield return "--drain-file";
        yield return DrainFile;
        if (BucketOrigin is { } origin)
        {
            yield return "--bucket-origin";
            yield return origin.ToString(CultureInfo.InvariantCulture);
        }
    }

    /// <summary>What <see cref="Arguments"/> wrote; null when there is nothing (the plain host of echo and memory).</summary>
    public static StormHost? Parse(IReadOnlyList<string> arguments)
    {
        if (arguments.Count == 0)
        {
            return null;
        }

        int? port = null;
        string? drainFile = null;
        long? origin = null;
        for (var i = 0; i + 1 < arguments.Count; i += 2)
        {
            switch (arguments[i])
            {
                case "--port":
                    port = int.Parse(arguments[i + 1], CultureInfo.InvariantCulture);
                    break;
                case "--drain-file":
                    drainFile = arguments[i + 1];
                    break;
                case "--bucket-origin":
                    origin = long.Parse(arguments[i + 1], CultureInfo.InvariantCulture);
                    break;
                default:
                    throw new ArgumentException($"the host process does not know '{arguments[i]}'", nameof(arguments));
            }
        }

        return port is { } p && drainFile is not null
            ? new StormHost(p, drainFile, origin)
            : throw new ArgumentException($"the host process needs --port and --drain-file together, got: {string.Join(' ', arguments)}", nameof(arguments));
    }
}
