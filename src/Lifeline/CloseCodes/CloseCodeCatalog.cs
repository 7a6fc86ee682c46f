using System.Collections.Frozen;

namespace Lifeline.CloseCodes;

/// <summary>
/// Every close code registered by RFC 6455 section 7.4 and the IANA WebSocket close-code registry, with
/// meaning, typical causes, remedy and default client reaction. Codes without a registration are described
/// by their range.
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
public static class CloseCodeCatalog
{
    private static readonly FrozenDictionary<int, CloseCodeInfo> ByValue = new[]
    {
        Entry(1000, "normal-closure", CloseReaction.Stop),
        Entry(1001, "going-away", CloseReaction.ReconnectSoon),
        Entry(1002, "protocol-error", CloseReaction.Stop),
        Entry(1003, "unsupported-data", CloseReaction.Stop),
        Entry(1004, "reserved", CloseReaction.ReconnectWithBackoff),
        Entry(1005, "no-status-received", CloseReaction.ReconnectWithBackoff),
        Entry(1006, "abnormal-closure", CloseReaction.ReconnectWithBackoff),
        Entry(1007, "invalid-payload-data", CloseReaction.Stop),
        Entry(1008, "policy-violation", CloseReaction.Stop),
        Entry(1009, "message-too-big", CloseReaction.Stop),
        Entry(1010, "mandatory-extension", CloseReaction.Stop),
        Entry(1011, "internal-error", CloseReaction.ReconnectWithBackoff),
        Entry(1012, "service-restart", CloseReaction.ReconnectSoon),
        Entry(1013, "try-again-later", CloseReaction.ReconnectWithBackoff),
        Entry(1014, "bad-gateway", CloseReaction.ReconnectWithBackoff),
        Entry(1015, "tls-handshake-failure", CloseReaction.Stop),
        Entry(3000, "unauthorized", CloseReaction.Stop),
        Entry(3003, "forbidden", CloseReaction.Stop),
        Entry(3008, "timeout", CloseReaction.ReconnectWithBackoff),
    }.ToFrozenDictionary(info => info.Code.Value);

    private static readonly FrozenDictionary<string, CloseCodeInfo> ByName =
        ByValue.Values.ToFrozenDictionary(info => Normalize(info.Slug), StringComparer.Ordinal);

    /// <summary>The registered codes in ascending order.</summary>
    public static IReadOnlyList<CloseCodeInfo> Registered { get; } =
        ByValue.Values.OrderBy(info => info.Code.Value).ToArray();

    /// <summary>
    /// The entry for a code. A registered code gets its own entry; any other value gets an "unassigned"
    /// entry whose texts describe its range and whose reaction is the range's default.
    /// </summary>
    public static CloseCodeInfo Get(CloseCode code) =>
        ByValue.TryGetValue(code.Value, out var info) ? info : Unassigned(code);

    /// <summary>Finds a registered code by name in any common spelling ("service-restart", "ServiceRestart"); null when none matches.</summary>
    public static CloseCodeInfo? FindByName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return ByName.GetValueOrDefault(Normalize(name));
    }

    private static CloseCodeInfo Entry(int value, string slug, CloseReaction reaction) =>
        new(new CloseCode(value), slug, isRegistered: true, reaction, textKey: $"C{value}");

    private static CloseCodeInfo Unassigned(CloseCode code)
    {
        var reaction = code.Range switch
        {
            CloseCodeRange.Registered or CloseCodeRange.Private => CloseReaction.ApplicationDecides,
            CloseCodeRange.Protocol => CloseReaction.ReconnectWithBackoff,
            _ => CloseReaction.Stop,
        };
        return new CloseCodeInfo(code, "unassigned", isRegistered: false, reaction, textKey: $"Range_{code.Range}");
    }

    // "Abnormal Closure", "abnormal_closure" and "AbnormalClosure" all become "abnormalclosure".
    private static string Normalize(string name) =>
        string.Concat(name.Where(char.IsLetterOrDigit)).ToLowerInvariant();
}
