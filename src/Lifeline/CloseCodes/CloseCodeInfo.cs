using System.Globalization;
using System.Resources;

namespace Lifeline.CloseCodes;

/// <summary>
/// What the catalogue knows about one close code: its name, what it means, when it is seen, how to
/// resolve it and the default client reaction. Texts are localised (English and French ship today):
/// each text accessor takes an optional culture and falls back to the current UI culture.
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
public sealed class CloseCodeInfo
{
    private static readonly ResourceManager Texts =
        new("Lifeline.Resources.CloseCodeTexts", typeof(CloseCodeInfo).Assembly);

    private readonly string _textKey;

    internal CloseCodeInfo(CloseCode code, string slug, bool isRegistered, CloseReaction defaultReaction, string textKey)
    {
        Code = code;
        Slug = slug;
        IsRegistered = isRegistered;
        DefaultReaction = defaultReaction;
        _textKey = textKey;
    }

    /// <summary>The code this entry describes.</summary>
    public CloseCode Code { get; }

    /// <summary>A stable, culture-independent name such as "abnormal-closure" ("unassigned" for codes without a registration).</summary>
    public string Slug { get; }

    /// <summary>True when RFC 6455 or the IANA registry assigns this exact code a meaning.</summary>
    public bool IsRegistered { get; }

    /// <summary>The range the code belongs to.</summary>
    public CloseCodeRange Range => Code.Range;

    /// <summary>Whether an endpoint may send this code in a Close frame.</summary>
    public bool CanBeSent => Code.CanBeSent;

    /// <summary>Whether the code is only ever observed locally (1005, 1006, 1015).</summary>
    public bool IsObservedOnly => Code.IsObservedOnly;

    /// <summary>The default client reaction (Lifeline's default reconnect policy follows it).</summary>
    public CloseReaction DefaultReaction { get; }

    /// <summary>The display name, e.g. "Abnormal Closure".</summary>
    public string GetName(CultureInfo? culture = null) =>
        IsRegistered ? Text($"{_textKey}_Name", culture) : Text("Unassigned_Name", culture);

    /// <summary>What the code means.</summary>
    public string GetMeaning(CultureInfo? culture = null) => Text($"{_textKey}_Meaning", culture);

    /// <summary>The typical situations that produce it.</summary>
    public string GetWhenYouSeeIt(CultureInfo? culture = null) => Text($"{_textKey}_When", culture);

    /// <summary>What to do about it.</summary>
    public string GetHowToResolve(CultureInfo? culture = null) => Text($"{_textKey}_Resolve", culture);

    /// <summary>The name of the code's range, e.g. "Private use (4000-4999)".</summary>
    public string GetRangeName(CultureInfo? culture = null) => Text($"Range_{Range}_Name", culture);

    /// <summary>"1006 Abnormal Closure".</summary>
    public override string ToString() => $"{Code} {GetName(CultureInfo.InvariantCulture)}";

    private static string Text(string key, CultureInfo? culture) =>
        Texts.GetString(key, culture ?? CultureInfo.CurrentUICulture)
        ?? throw new InvalidOperationException($"The close-code resources have no text '{key}'.");
}
