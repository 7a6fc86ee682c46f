using System.Text;
using Lifeline.Cli.Input;

namespace Lifeline.Cli.Tests.Input;

public class LineReaderTests
{
    [Fact]
    public async Task Start_MixedLineEndingsAndNoFinalNewline_YieldsEveryLine()
    {
        var lines = await ReadAsync("one\ntwo\r\n\nthree", maxLineBytes: 100);

        Assert.Equal(["one", "two", "", "three"], lines.Select(l => Encoding.UTF8.GetString(l.Data!)));
        Assert.Equal([1L, 2, 3, 4], lines.Select(l => l.Number));
    }

    [Fact]
    public async Task Start_LineAtTheLimit_IsKept_LongerLineIsReportedWithItsLength()
    {
        var atLimit = new string('a', 8);
        var tooLong = new string('b', 200_000); // spans several reads

        var lines = await ReadAsync($"{atLimit}\r\n{tooLong}\nnext\n", maxLineBytes: 8);

        Assert.Equal(atLimit, Encoding.UTF8.GetString(lines[0].Data!));
        Assert.True(lines[1].TooLong);
        Assert.Equal(200_000, lines[1].Length);
        Assert.Equal("next", Encoding.UTF8.GetString(lines[2].Data!));
    }

    private static async Task<List<InputLine>> ReadAsync(string input, int maxLineBytes)
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(input));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var lines = new List<InputLine>();
        await foreach (var line in LineReader.Start(stream, maxLineBytes).ReadAllAsync(timeout.Token))
        {
            lines.Add(line);
        }

        return lines;
    }
}
