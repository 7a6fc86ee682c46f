using System.Globalization;
using System.Text.Json;
using Lifeline.FaultProxy;
using Lifeline.FaultProxy.Toxics;

namespace Lifeline.Cli.Diagnostics;

/// <summary>
/// The command language of <c>lifeline proxy</c>, the same on stdin and on the HTTP control endpoint:
/// one command a line, answered with one line ("ok ..." or "error: ...").
/// </summary>
internal sealed class ProxyControl(TcpFaultProxy proxy)
{
    public const string Help =
        "commands: status | links | reset [ID] | fin [ID] | silence [ID] | blackhole on|off | latency MS [JITTER_MS] | latency off | " +
        "bandwidth BYTES_PER_S | bandwidth off | slice BYTES [PAUSE_MS] | slice off | idle-cut SECONDS [reset|fin|silent|reset-on-next] | idle-cut off | " +
        "refuse [SECONDS] | accept | clear | help";

    private readonly Dictionary<string, IToxic> _toxics = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public string Execute(string line)
    {
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 0)
        {
            return "error: empty command; " + Help;
        }

        try
        {
            lock (_lock)
            {
                var name = words[0].ToLowerInvariant();
                if (MostWords.TryGetValue(name, out var most) && words.Length > most)
                {
                    // Ignoring them would answer "ok" to a command that was not understood ("blackhole on now").
                    throw new ArgumentException($"too many words for '{name}': '{string.Join(' ', words[most..])}' is not understood; {Help}");
                }

                return name switch
                {
                    "help" => Help,
                    "status" => StatusLocked(),
                    "links" => JsonSerializer.Serialize(proxy.Links.Select(l => new { id = l.Id, client = l.ClientEndPoint?.ToString(), up = l.BytesUpstream, down = l.BytesDownstream, idleMs = (long)l.IdleFor.TotalMilliseconds, silenced = l.IsSilenced, forgotten = l.IsForgotten })),
                    "reset" => ForLinks(words, link => link.Reset(), "reset"),
                    "fin" => ForLinks(words, link => link.CloseWithFin(), "closed with FIN"),
                    "silence" => ForLinks(words, link => link.Silence(), "silenced"),
                    "blackhole" => Toggle(words, "blackhole", () => new BlackHoleToxic()),
                    "latency" => Toggle(words, "latency", () => Latency(words)),
                    "bandwidth" => Toggle(words, "bandwidth", () => new BandwidthToxic(Number(words, 1))),
                    "slice" => Toggle(words, "slice", () => new SlicerToxic((int)Number(words, 1), words.Length > 2 ? Milliseconds(words, 2, allowZero: true) : TimeSpan.Zero)),
                    "idle-cut" => IdleCut(words),
                    "refuse" => Refuse(words),
                    "accept" => Do(proxy.AcceptConnections, "accepting connections"),
                    "clear" => Clear(),
                    var other => $"error: unknown command '{other}'; {Help}",
                };
            }
        }
#pragma warning disable CA1031 // A bad command is answered, never allowed to take the proxy and its links down.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return $"error: {e.Message}";
        }
    }

    /// <summary>The proxy's state as JSON; safe beside commands arriving on another thread (GET /status).</summary>
    public string Status()
    {
        lock (_lock)
        {
            return StatusLocked();
        }
    }

    private string StatusLocked() => JsonSerializer.Serialize(new
    {
        listen = proxy.EndPoint.ToString(),
        links = proxy.Links.Count,
        accepted = proxy.AcceptedCount,
        refusing = proxy.IsRefusingConnections,
        faults = _toxics.Keys.Order(StringComparer.Ordinal).ToArray(),
        idleCut = proxy.IdleCut is { } cut ? new { seconds = cut.After.TotalSeconds, kind = KindName(cut.Kind) } : null,
    });

    private string Toggle(string[] words, string name, Func<IToxic> create)
    {
        var off = words.Length > 1 && words[1].Equals("off", StringComparison.OrdinalIgnoreCase);
        if (!off && name != "blackhole" && words.Length < 2)
        {
            throw new ArgumentException($"'{name}' needs a value; {Help}");
        }

        if (!off && name == "blackhole" && words.Length > 1 && !words[1].Equals("on", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException("blackhole takes 'on' or 'off'.");
        }

        // Build the new fault first: a bad value leaves the one in place untouched.
        var toxic = off ? null : create();
        if (toxic is not null)
        {
            // Added before the old one goes: for a moment both apply, never neither. Removing first signalled the
            // pumps with the fault lifted, and bytes held by a black hole (or a chunk under latency) could go through.
            proxy.AddToxic(toxic);
        }

        if (_toxics.Remove(name, out var existing))
        {
            proxy.RemoveToxic(existing);
        }

        if (toxic is null)
        {
            return $"ok {name} off";
        }

        _toxics[name] = toxic;
        return $"ok {name} on";
    }

    private string IdleCut(string[] words)
    {
        if (words.Length < 2)
        {
            throw new ArgumentException("idle-cut needs SECONDS (and optionally reset, fin, silent or reset-on-next), or 'off'.");
        }

        if (words[1].Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            proxy.SetIdleCut(null);
            return "ok idle-cut off";
        }

        var kind = words.Length > 2 ? ParseKind(words[2]) : IdleCutKind.Reset;
        proxy.SetIdleCut(Seconds(words, 1), kind);
        return $"ok idle-cut {words[1]} s {KindName(kind)}";
    }

    private string Refuse(string[] words)
    {
        proxy.RefuseConnections(words.Length > 1 ? Seconds(words, 1) : null);
        return words.Length > 1 ? $"ok refusing for {words[1]} s" : "ok refusing until 'accept'";
    }

    private string Clear()
    {
        _toxics.Clear();
        proxy.ClearFaults();
        return "ok cleared";
    }

    private string ForLinks(string[] words, Action<ProxyLink> action, string done)
    {
        var links = proxy.Links.Where(l => words.Length < 2 || l.Id.ToString(CultureInfo.InvariantCulture) == words[1]).ToArray();
        if (words.Length > 1 && links.Length == 0)
        {
            throw new ArgumentException($"no open link with id {words[1]}; 'links' lists them.");
        }

        foreach (var link in links)
        {
            action(link);
        }

        return $"ok {links.Length} link(s) {done}";
    }

    private static string Do(Action action, string done)
    {
        action();
        return "ok " + done;
    }

    /// <summary>The word for a cut kind, as <see cref="ParseKind"/> reads it.</summary>
    internal static string KindName(IdleCutKind kind) => kind == IdleCutKind.ResetOnNextPacket ? "reset-on-next" : kind.ToString().ToLowerInvariant();

    internal static IdleCutKind ParseKind(string text) => text.ToLowerInvariant() switch
    {
        "reset" or "rst" => IdleCutKind.Reset,
        "fin" => IdleCutKind.Fin,
        "silent" => IdleCutKind.Silent,
        "reset-on-next" => IdleCutKind.ResetOnNextPacket,
        _ => throw new ArgumentException($"'{text}' is not a cut kind; use reset, fin, silent or reset-on-next."),
    };

    /// <summary>The largest count a command takes (bytes per second, slice bytes): what an int holds.</summary>
    internal const long MaxNumber = int.MaxValue;

    /// <summary>The longest delay a command takes, milliseconds: one day.</summary>
    internal const long MaxMilliseconds = 86_400_000;

    /// <summary>The most words each command takes, its name included.</summary>
    private static readonly Dictionary<string, int> MostWords = new(StringComparer.Ordinal)
    {
        ["help"] = 1,
        ["status"] = 1,
        ["links"] = 1,
        ["accept"] = 1,
        ["clear"] = 1,
        ["reset"] = 2,
        ["fin"] = 2,
        ["silence"] = 2,
        ["blackhole"] = 2,
        ["bandwidth"] = 2,
        ["refuse"] = 2,
        ["latency"] = 3,
        ["slice"] = 3,
        ["idle-cut"] = 3,
    };

    private static long Number(string[] words, int index, long max = MaxNumber, bool allowZero = false) =>
        long.TryParse(words[index], NumberStyles.None, CultureInfo.InvariantCulture, out var value) && (value > 0 || allowZero && value == 0) && value <= max
            ? value
            : throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"'{words[index]}' is not a {(allowZero ? "whole number from 0" : "positive whole number")} up to {max}."));

    private static TimeSpan Milliseconds(string[] words, int index, bool allowZero = false) => TimeSpan.FromMilliseconds(Number(words, index, MaxMilliseconds, allowZero));

    private static TimeSpan Seconds(string[] words, int index) =>
        double.TryParse(words[index], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && CommonOptions.IsSeconds(value, allowZero: false, CommonOptions.OneDaySeconds)
            ? TimeSpan.FromSeconds(value)
            : throw new ArgumentException($"'{words[index]}' is not a number of seconds from 0.001 to 86400 (one day).");

    private static LatencyToxic Latency(string[] words)
    {
        var latency = Milliseconds(words, 1);
        var jitter = words.Length > 2 ? Milliseconds(words, 2, allowZero: true) : TimeSpan.Zero;
        return jitter <= latency
            ? new LatencyToxic(latency, jitter)
            : throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"the jitter ({words[2]} ms) must be at most the latency ({words[1]} ms): a delay is latency plus or minus jitter, never below zero."));
    }
}
