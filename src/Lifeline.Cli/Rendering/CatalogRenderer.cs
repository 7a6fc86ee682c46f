using System.Globalization;
using System.Text.Json;
using Lifeline.CloseCodes;
using Spectre.Console;

namespace Lifeline.Cli.Rendering;

/// <summary>Renders catalogue entries as text (Spectre.Console), markdown or JSON.</summary>
internal sealed class CatalogRenderer(CliConsole console, CultureInfo culture)
{
    private string L(string key) => CatalogLabels.Get(key, culture);

    public void Explain(CloseCodeInfo info, string format)
    {
        switch (format)
        {
            case "json":
                console.Output.WriteLine(JsonSerializer.Serialize(CatalogJson.Describe(info, culture), console.IsTerminal ? CatalogJson.Indented : CatalogJson.Compact));
                break;
            case "markdown":
                console.Output.WriteLine($"# {info.Code} {info.GetName(culture)}");
                console.Output.WriteLine();
                WriteFactsMarkdown(info);
                WriteSectionsMarkdown(info, "##");
                break;
            default:
                console.Heading($"[bold]{info.Code} {Markup.Escape(info.GetName(culture))}[/]");
                console.Rich.Write(FactsTable(info));
                foreach (var (heading, body) in Sections(info))
                {
                    console.Rich.MarkupLine($"[bold underline]{Markup.Escape(heading)}[/]");
                    console.Rich.WriteLine(body);
                    console.Rich.WriteLine();
                }

                break;
        }
    }

    public void Compare(CloseCodeComparison comparison, string format)
    {
        switch (format)
        {
            case "json":
                console.Output.WriteLine(JsonSerializer.Serialize(CatalogJson.Describe(comparison), console.IsTerminal ? CatalogJson.Indented : CatalogJson.Compact));
                break;
            case "markdown":
                CompareMarkdown(comparison);
                break;
            default:
                CompareText(comparison);
                break;
        }
    }

    public void List(string format)
    {
        var all = CloseCodeCatalog.Registered;
        switch (format)
        {
            case "json":
                console.Output.WriteLine(JsonSerializer.Serialize(all.Select(info => CatalogJson.Describe(info, culture)), console.IsTerminal ? CatalogJson.Indented : CatalogJson.Compact));
                break;
            case "markdown":
                console.Output.WriteLine($"| {L("Heading_Code")} | {L("Heading_Name")} | {L("Heading_MayBeSent")} | {L("Heading_DefaultReaction")} |");
                console.Output.WriteLine("|---|---|---|---|");
                foreach (var info in all)
                {
                    console.Output.WriteLine($"| {info.Code} | {info.GetName(culture)} | {CatalogLabels.MayBeSent(info, culture)} | {CatalogLabels.Reaction(info.DefaultReaction, culture)} |");
                }

                break;
            default:
                var table = new Table().AddColumns(L("Heading_Code"), L("Heading_Name"), L("Heading_MayBeSent"), L("Heading_DefaultReaction"));
                foreach (var info in all)
                {
                    table.AddRow(
                        new Text(info.Code.ToString()),
                        new Text(info.GetName(culture)),
                        new Text(CatalogLabels.MayBeSent(info, culture)),
                        new Text(CatalogLabels.Reaction(info.DefaultReaction, culture)));
                }

                console.Rich.Write(table);
                break;
        }
    }

    private (string Heading, string Body)[] Sections(CloseCodeInfo info) =>
    [
        (L("Heading_Description"), info.GetMeaning(culture)),
        (L("Heading_WhenYouSeeIt"), info.GetWhenYouSeeIt(culture)),
        (L("Heading_HowToResolve"), info.GetHowToResolve(culture)),
    ];

    private (string Label, string Value)[] Facts(CloseCodeInfo info) =>
    [
        (L("Heading_Range"), info.GetRangeName(culture)),
        (L("Heading_MayBeSent"), CatalogLabels.MayBeSent(info, culture)),
        (L("Heading_DefaultReaction"), CatalogLabels.Reaction(info.DefaultReaction, culture)),
    ];

    private Grid FactsTable(CloseCodeInfo info)
    {
        var grid = new Grid().AddColumn().AddColumn();
        foreach (var (label, value) in Facts(info))
        {
            grid.AddRow(new Markup($"[bold]{Markup.Escape(label)}[/]"), new Text(value));
        }

        grid.AddEmptyRow();
        return grid;
    }

    private void WriteFactsMarkdown(CloseCodeInfo info)
    {
        foreach (var (label, value) in Facts(info))
        {
            console.Output.WriteLine($"- **{label}**: {value}");
        }

        console.Output.WriteLine();
    }

    private void WriteSectionsMarkdown(CloseCodeInfo info, string level)
    {
        foreach (var (heading, body) in Sections(info))
        {
            console.Output.WriteLine($"{level} {heading}");
            console.Output.WriteLine();
            console.Output.WriteLine(body);
            console.Output.WriteLine();
        }
    }

    private void CompareMarkdown(CloseCodeComparison comparison)
    {
        var output = console.Output;
        output.WriteLine($"# {comparison.Title}");
        output.WriteLine();
        output.WriteLine(comparison.Introduction);
        output.WriteLine();
        foreach (var info in new[] { comparison.First, comparison.Second })
        {
            output.WriteLine($"## {info.Code} {info.GetName(culture)}");
            output.WriteLine();
            WriteFactsMarkdown(info);
            WriteSectionsMarkdown(info, "###");
        }

        output.WriteLine($"## {L("Heading_KeyDifferences")}");
        output.WriteLine();
        for (var i = 0; i < comparison.KeyDifferences.Count; i++)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i + 1}. {comparison.KeyDifferences[i]}"));
        }

        output.WriteLine();
        output.WriteLine($"## {L("Heading_WhenToUseWhich")}");
        output.WriteLine();
        foreach (var line in comparison.WhenToUseWhich)
        {
            output.WriteLine($"- {line}");
        }
    }

    private void CompareText(CloseCodeComparison comparison)
    {
        var rich = console.Rich;
        console.Heading($"[bold]{Markup.Escape(comparison.Title)}[/]");
        rich.WriteLine(comparison.Introduction);
        rich.WriteLine();

        var first = comparison.First;
        var second = comparison.Second;
        var table = new Table().Border(TableBorder.Rounded).AddColumn(string.Empty)
            .AddColumn($"[bold]{first.Code} {Markup.Escape(first.GetName(culture))}[/]")
            .AddColumn($"[bold]{second.Code} {Markup.Escape(second.GetName(culture))}[/]");
        var rows = Sections(first).Zip(Sections(second), (a, b) => (a.Heading, A: a.Body, B: b.Body))
            .Concat(Facts(first).Zip(Facts(second), (a, b) => (Heading: a.Label, A: a.Value, B: b.Value)));
        foreach (var (heading, a, b) in rows)
        {
            table.AddRow(new Markup($"[bold]{Markup.Escape(heading)}[/]"), new Text(a), new Text(b));
        }

        rich.Write(table);
        rich.WriteLine();
        rich.MarkupLine($"[bold underline]{Markup.Escape(L("Heading_KeyDifferences"))}[/]");
        for (var i = 0; i < comparison.KeyDifferences.Count; i++)
        {
            rich.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i + 1}. {comparison.KeyDifferences[i]}"));
        }

        rich.WriteLine();
        rich.MarkupLine($"[bold underline]{Markup.Escape(L("Heading_WhenToUseWhich"))}[/]");
        foreach (var line in comparison.WhenToUseWhich)
        {
            rich.WriteLine($"- {line}");
        }
    }
}
