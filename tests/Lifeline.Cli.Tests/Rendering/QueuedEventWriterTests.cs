using System.Globalization;
using System.Text;
using System.Text.Json;
using Lifeline.Cli.Rendering;

namespace Lifeline.Cli.Tests.Rendering;

public sealed class QueuedEventWriterTests
{
    [Fact]
    public async Task WhileStdoutTakesNothing_WritesDoNotWait_ExtraLinesAreDroppedAndCounted_AndTheRestComeOutInOrder()
    {
        var output = new StallingWriter();
        var console = new CliConsole(output, TextWriter.Null);
        output.Stall();
        var events = EventWriter.Queued(console, json: true, TimeProvider.System, capacity: 2);

        // Ten events while stdout takes nothing: none of these calls may wait for it.
        await Task.Run(() =>
        {
            for (var i = 0; i < 10; i++)
            {
                events.Write(events.Line("tick") with { Data = i.ToString(CultureInfo.InvariantCulture) });
            }
        }).WaitAsync(TimeSpan.FromSeconds(30));

        // Two wait in the queue, and the writer may hold one more that it took before stdout stalled.
        var dropped = events.Dropped;
        Assert.InRange(dropped, 7, 8);

        output.Resume();
        await events.DisposeAsync();

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        var ticks = lines.Where(e => e.GetProperty("event").GetString() == "tick").Select(e => int.Parse(e.GetProperty("data").GetString()!, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(10 - dropped, ticks.Count);
        Assert.Equal(ticks.Order(), ticks); // the ones kept, in the order they were written
        Assert.Equal(0, ticks[0]);
        var report = Assert.Single(lines, e => e.GetProperty("event").GetString() == "events-dropped");
        Assert.StartsWith($"{dropped} lines were dropped", report.GetProperty("data").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LinesWrittenAsTheyAre_KeepTheirPlaceAmongTheEvents()
    {
        var output = new StallingWriter();
        var events = EventWriter.Queued(new CliConsole(output, TextWriter.Null), json: false, TimeProvider.System);

        events.WriteText("first");
        events.Write(events.Line("link-opened") with { Data = "second" });
        events.WriteText("third");
        await events.DisposeAsync();

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal("first", lines[0]);
        Assert.EndsWith("link-opened second", lines[1], StringComparison.Ordinal);
        Assert.Equal("third", lines[2]);
        Assert.Equal(0, events.Dropped);
    }

    /// <summary>A stdout that can stop taking lines, as a full pipe nobody reads does.</summary>
    private sealed class StallingWriter : TextWriter
    {
        private readonly StringBuilder _text = new();
        private readonly ManualResetEventSlim _open = new(initialState: true);

        public override Encoding Encoding => Encoding.UTF8;

        public void Stall() => _open.Reset();

        public void Resume() => _open.Set();

        public override void Write(char value)
        {
            _open.Wait();
            lock (_text)
            {
                _text.Append(value);
            }
        }

        public override void Write(string? value)
        {
            _open.Wait();
            lock (_text)
            {
                _text.Append(value);
            }
        }

        public override void WriteLine(string? value) => Write(value + "\n");

        public override string ToString()
        {
            lock (_text)
            {
                return _text.ToString();
            }
        }
    }
}
