using System.Globalization;
using System.Text;

namespace Lifeline.Benchmarks.Suite;

/// <summary>A Markdown table written to the console as the suite goes.</summary>
internal sealed class Table(params string[] columns)
{
    private readonly List<string[]> _rows = [];

    public void Add(params object?[] cells) => _rows.Add([.. cells.Select(Format)]);

    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append("| ").AppendJoin(" | ", columns).AppendLine(" |");
        text.Append('|').AppendJoin('|', columns.Select((_, i) => i == 0 ? "---" : "---:")).AppendLine("|");
        foreach (var row in _rows)
        {
            text.Append("| ").AppendJoin(" | ", row).AppendLine(" |");
        }

        return text.ToString();
    }

    public static string Format(object? value) => value switch
    {
        null => "-",
        double d when double.IsNaN(d) => "-",
        double d => d.ToString(Math.Abs(d) >= 100 ? "N0" : "0.00", CultureInfo.InvariantCulture),
        long l => l.ToString("N0", CultureInfo.InvariantCulture),
        int i => i.ToString("N0", CultureInfo.InvariantCulture),
        TimeSpan t => t.TotalSeconds >= 1 ? $"{t.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s" : $"{t.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture)} ms",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    public static string Ratio(double value, double baseline) => baseline > 0 && !double.IsNaN(value) ? (value / baseline).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "-";
}
