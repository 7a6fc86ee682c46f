using System.CommandLine;
using Lifeline.Cli.Rendering;

namespace Lifeline.Cli.Commands;

/// <summary><c>explain</c>, <c>compare</c> and <c>codes</c>: the close-code catalogue for people.</summary>
internal static class CatalogCommands
{
    public static Command Explain(CliConsole console)
    {
        var code = new Argument<string>("code") { Description = "A close code number (1006) or name (abnormal-closure)." };
        var language = CommonOptions.Language();
        var format = CommonOptions.Format();
        var command = new Command("explain", "Explain one close code: range, meaning, whether it may be sent, causes, remedy, default reaction.")
        {
            code, language, format,
        };
        command.SetAction(result =>
        {
            var info = CommonOptions.ParseCode(result.GetValue(code)!, "explain").Info;
            new CatalogRenderer(console, CommonOptions.Culture(result.GetValue(language)!)).Explain(info, result.GetValue(format)!);
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command Compare(CliConsole console)
    {
        var first = new Argument<string>("first") { Description = "The first close code (number or name)." };
        var second = new Argument<string>("second") { Description = "The second close code (number or name)." };
        var language = CommonOptions.Language();
        var format = CommonOptions.Format();
        var command = new Command("compare", "Compare two close codes side by side: descriptions, causes, remedies, key differences.")
        {
            first, second, language, format,
        };
        command.SetAction(result =>
        {
            var a = CommonOptions.ParseCode(result.GetValue(first)!, "compare");
            var b = CommonOptions.ParseCode(result.GetValue(second)!, "compare");
            var culture = CommonOptions.Culture(result.GetValue(language)!);
            new CatalogRenderer(console, culture).Compare(CloseCodeComparison.Create(a, b, culture), result.GetValue(format)!);
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command Codes(CliConsole console)
    {
        var language = CommonOptions.Language();
        var format = CommonOptions.Format();
        var command = new Command("codes", "List every registered close code with its default client reaction.") { language, format };
        command.SetAction(result =>
        {
            new CatalogRenderer(console, CommonOptions.Culture(result.GetValue(language)!)).List(result.GetValue(format)!);
            return ExitCodes.Success;
        });
        return command;
    }
}
