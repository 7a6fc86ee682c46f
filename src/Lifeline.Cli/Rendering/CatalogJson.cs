using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Lifeline.CloseCodes;

namespace Lifeline.Cli.Rendering;

/// <summary>The JSON shapes of <c>explain</c>, <c>compare</c> and <c>codes</c>.</summary>
internal static class CatalogJson
{
    public static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        // Keep accented French readable instead of \u00e9 escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static readonly JsonSerializerOptions Compact = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static object Describe(CloseCodeInfo info, CultureInfo culture) => new
    {
        code = info.Code.Value,
        name = info.GetName(culture),
        slug = info.Slug,
        registered = info.IsRegistered,
        range = JsonNamingPolicy.CamelCase.ConvertName(info.Range.ToString()),
        rangeName = info.GetRangeName(culture),
        canBeSent = info.CanBeSent,
        observedOnly = info.IsObservedOnly,
        defaultReaction = JsonNamingPolicy.CamelCase.ConvertName(info.DefaultReaction.ToString()),
        meaning = info.GetMeaning(culture),
        whenYouSeeIt = info.GetWhenYouSeeIt(culture),
        howToResolve = info.GetHowToResolve(culture),
    };

    public static object Describe(CloseCodeComparison comparison) => new
    {
        language = comparison.Culture.Name,
        title = comparison.Title,
        introduction = comparison.Introduction,
        first = Describe(comparison.First, comparison.Culture),
        second = Describe(comparison.Second, comparison.Culture),
        keyDifferences = comparison.KeyDifferences,
        whenToUseWhich = comparison.WhenToUseWhich,
    };
}
