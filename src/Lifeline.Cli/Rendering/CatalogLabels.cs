using System.Globalization;
using System.Resources;
using Lifeline.CloseCodes;

namespace Lifeline.Cli.Rendering;

/// <summary>Localised headings and phrases used when the catalogue is rendered for people.</summary>
internal static class CatalogLabels
{
    private static readonly ResourceManager Labels =
        new("Lifeline.Cli.Resources.CatalogLabels", typeof(CatalogLabels).Assembly);

    /// <summary>Looks up a label such as "Heading_WhenYouSeeIt"; throws when the key does not exist.</summary>
    public static string Get(string key, CultureInfo? culture = null) =>
        Labels.GetString(key, culture ?? CultureInfo.CurrentUICulture)
        ?? throw new InvalidOperationException($"The catalogue labels have no text '{key}'.");

    /// <summary>Formats a label that has placeholders.</summary>
    public static string Format(string key, CultureInfo? culture, params object[] args) =>
        string.Format(culture ?? CultureInfo.CurrentUICulture, Get(key, culture), args);

    /// <summary>The phrase for a reaction, e.g. "reconnect with exponential backoff".</summary>
    public static string Reaction(CloseReaction reaction, CultureInfo? culture = null) =>
        Get($"Reaction_{reaction}", culture);

    /// <summary>"yes", or why the code may not be sent.</summary>
    public static string MayBeSent(CloseCodeInfo info, CultureInfo? culture = null)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (info.CanBeSent)
        {
            return Get("Yes", culture);
        }

        return Get(info.IsObservedOnly ? "No_ObservedOnly" : "No_Reserved", culture);
    }
}
