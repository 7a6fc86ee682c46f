using System.Globalization;
using Lifeline.CloseCodes;

namespace Lifeline.Cli.Rendering;

/// <summary>
/// A side-by-side comparison of two close codes: each one's description, when it is seen and how to
/// resolve it, then the key differences and which reaction fits when. Built from the catalogue in one
/// culture; rendering is left to the caller.
/// </summary>
internal sealed class CloseCodeComparison
{
    private CloseCodeComparison(CloseCodeInfo first, CloseCodeInfo second, CultureInfo culture)
    {
        First = first;
        Second = second;
        Culture = culture;
        Title = CatalogLabels.Format("Title_Compare", culture, first.Code, first.GetName(culture), second.Code, second.GetName(culture));
        Introduction = CatalogLabels.Format("Intro_Compare", culture,
            first.Code, second.Code, first.GetName(culture), first.GetMeaning(culture), second.GetName(culture), second.GetMeaning(culture));
        KeyDifferences = BuildDifferences(first, second, culture);
        WhenToUseWhich =
        [
            CatalogLabels.Format("Use_For", culture, first.Code, first.GetName(culture), first.GetHowToResolve(culture)),
            CatalogLabels.Format("Use_For", culture, second.Code, second.GetName(culture), second.GetHowToResolve(culture)),
        ];
    }

    /// <summary>The first code's entry.</summary>
    public CloseCodeInfo First { get; }

    /// <summary>The second code's entry.</summary>
    public CloseCodeInfo Second { get; }

    /// <summary>The culture the texts are in.</summary>
    public CultureInfo Culture { get; }

    /// <summary>"WebSocket 1006 Abnormal Closure vs 1012 Service Restart".</summary>
    public string Title { get; }

    /// <summary>One paragraph introducing both codes.</summary>
    public string Introduction { get; }

    /// <summary>Numbered statements of how the two codes differ.</summary>
    public IReadOnlyList<string> KeyDifferences { get; }

    /// <summary>One statement per code of the reaction that fits it.</summary>
    public IReadOnlyList<string> WhenToUseWhich { get; }

    /// <summary>Compares two codes; the culture defaults to the current UI culture.</summary>
    public static CloseCodeComparison Create(CloseCode first, CloseCode second, CultureInfo? culture = null) =>
        new(first.Info, second.Info, culture ?? CultureInfo.CurrentUICulture);

    private static string[] BuildDifferences(CloseCodeInfo a, CloseCodeInfo b, CultureInfo culture)
    {
        var differences = new List<string>
        {
            CatalogLabels.Format("Diff_Meaning", culture, a.Code, a.GetMeaning(culture)),
            CatalogLabels.Format("Diff_Meaning", culture, b.Code, b.GetMeaning(culture)),
            CatalogLabels.Format("Diff_When", culture, a.Code, a.GetWhenYouSeeIt(culture)),
            CatalogLabels.Format("Diff_When", culture, b.Code, b.GetWhenYouSeeIt(culture)),
        };

        if (a.CanBeSent && b.IsObservedOnly)
        {
            differences.Add(CatalogLabels.Format("Diff_SendVsObserved", culture, a.Code, b.Code));
        }
        else if (b.CanBeSent && a.IsObservedOnly)
        {
            differences.Add(CatalogLabels.Format("Diff_SendVsObserved", culture, b.Code, a.Code));
        }

        differences.Add(a.DefaultReaction == b.DefaultReaction
            ? CatalogLabels.Format("Diff_SameReaction", culture, CatalogLabels.Reaction(a.DefaultReaction, culture))
            : CatalogLabels.Format("Diff_Reaction", culture,
                CatalogLabels.Reaction(a.DefaultReaction, culture), a.Code,
                CatalogLabels.Reaction(b.DefaultReaction, culture), b.Code));
        return [.. differences];
    }
}
