using Lifeline.IntegrationTests.Infrastructure;

namespace Lifeline.IntegrationTests.Cli;

/// <summary>
/// The in-process CLI's output is read by the tests while the command still writes it. A CI run once
/// failed parsing a JSON line caught half written: <c>{"time":"2026-11</c>, then the end of the text.
/// </summary>
public sealed class CapturedTextTests
{
    [Fact]
    public void ParseJsonLines_TextEndsInsideALine_LeavesThatLineForTheNextLook()
    {
        var lines = ToolProcess.ParseJsonLines("{\"event\":\"connected\"}\n{\"event\":\"closed\"}\n{\"time\":\"2026-11");

        Assert.Equal(["connected", "closed"], lines.Select(line => line.GetProperty("event").GetString()));
    }

    [Fact]
    public async Task JsonLines_ReadWhileWritten_AreAlwaysWholeAndNoneIsLost()
    {
        const int Lines = 20_000;
        var captured = new CapturedText();
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < Lines; i++)
            {
                captured.Writer.WriteLine($$"""{"event":"tick","n":{{i}},"text":"some words to make the line long"}""");
            }
        });

        var looks = 0;
        while (!writer.IsCompleted && looks < 100_000)
        {
            var lines = ToolProcess.ParseJsonLines(captured.ToString());
            for (var i = 0; i < lines.Count; i++)
            {
                Assert.Equal(i, lines[i].GetProperty("n").GetInt32());
            }

            looks++;
        }

        await writer.WaitAsync(TimeSpan.FromSeconds(30));
        var all = ToolProcess.ParseJsonLines(captured.ToString());
        Assert.Equal(Lines, all.Count);
        Assert.Equal(Lines - 1, all[^1].GetProperty("n").GetInt32());
    }
}
