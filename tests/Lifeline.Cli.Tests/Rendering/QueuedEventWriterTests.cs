using System.Globalization;
using System.Text;
using System.Text.Json;
using Lifeline.Cli.Rendering;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.Cli.Tests.Rendering;

public sealed class QueuedEventWriterTests
{
    [Fact]
    public async Task WhileStdoutTakesNothing_WritesDoNotWait_ExtraLinesAreDropped_AndCountedWhereTheyWere()
    {
        var output = new StallingWriter();
        var console = new CliConsole(output, TextWriter.Null);
        output.Stall();
        var clock = new FakeTimeProvider(); // moved by hand only: it never ends the final wait
        var events = EventWriter.Queued(console, json: true, clock, capacity: 2);

        // Ten events while stdout takes nothing: none of these calls may wait for it. The writer holds the first (its
        // write waits), two wait in the queue, and the other seven are dropped.
        WriteTicks(events, 0, 1);
        await output.WriteWaiting.WaitAsync(TimeSpan.FromSeconds(30));
        var droppedAt = clock.GetUtcNow();
        await Task.Run(() => WriteTicks(events, 1, 9)).WaitAsync(TimeSpan.FromSeconds(30));
        const int kept = 3;
        var dropped = events.Dropped;
        Assert.Equal(7, dropped);

        // Once stdout takes lines again and the queue is empty, the next line is kept, with the count of the drops before it.
        output.Resume();
        await WaitUntilAsync(() => Lines(output).Count == kept);
        clock.Advance(TimeSpan.FromSeconds(5));
        WriteTicks(events, 10, 1);
        await events.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        var lines = Lines(output);
        Assert.Equal([.. Enumerable.Range(0, kept).Select(i => $"tick {i}"), $"events-dropped {dropped}", "tick 10"], lines.Select(Describe));
        Assert.Equal(droppedAt, lines[kept].GetProperty("time").GetDateTimeOffset()); // stamped when the drops began, not when reported
    }

    [Fact]
    public async Task LinesDroppedAfterTheLastOneKept_AreCountedAtTheEnd()
    {
        var output = new StallingWriter();
        output.Stall();
        var events = EventWriter.Queued(new CliConsole(output, TextWriter.Null), json: true, new FakeTimeProvider(), capacity: 1);

        // The writer holds the first, one waits in the queue, and the last three are dropped with nothing after them.
        WriteTicks(events, 0, 1);
        await output.WriteWaiting.WaitAsync(TimeSpan.FromSeconds(30));
        WriteTicks(events, 1, 4);
        output.Resume();
        await events.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(["tick 0", "tick 1", "events-dropped 3"], Lines(output).Select(Describe));
    }

    [Fact]
    public async Task LinesWrittenAsTheyAre_KeepTheirPlaceAmongTheEvents()
    {
        var output = new StallingWriter();
        var events = EventWriter.Queued(new CliConsole(output, TextWriter.Null), json: false, new FakeTimeProvider());

        events.WriteText("first");
        events.Write(events.Line("link-opened") with { Data = "second" });
        events.WriteText("third");
        await events.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal("first", lines[0]);
        Assert.EndsWith("link-opened second", lines[1], StringComparison.Ordinal);
        Assert.Equal("third", lines[2]);
        Assert.Equal(0, events.Dropped);
    }

    private static void WriteTicks(EventWriter events, int first, int count)
    {
        for (var i = first; i < first + count; i++)
        {
            events.Write(events.Line("tick") with { Data = i.ToString(CultureInfo.InvariantCulture) });
        }
    }

    private static List<JsonElement> Lines(StallingWriter output) =>
        [.. output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement)];

    /// <summary>"tick N", or "events-dropped N" with the count the line states.</summary>
    private static string Describe(JsonElement line) => line.GetProperty("event").GetString() switch
    {
        "events-dropped" => "events-dropped " + line.GetProperty("data").GetString()!.Split(' ')[0],
        var name => $"{name} {line.GetProperty("data").GetString()}",
    };

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for stdout to take the queued lines");
            await Task.Delay(20);
        }
    }

    /// <summary>A stdout that can stop taking lines, as a full pipe nobody reads does.</summary>
    private sealed class StallingWriter : TextWriter
    {
        private readonly StringBuilder _text = new();
        private readonly ManualResetEventSlim _open = new(initialState: true);
        private readonly TaskCompletionSource _writeWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override Encoding Encoding => Encoding.UTF8;

        /// <summary>Completes once a write found stdout stalled and waits.</summary>
        public Task WriteWaiting => _writeWaiting.Task;

        public void Stall() => _open.Reset();

        public void Resume() => _open.Set();

        public override void Write(char value)
        {
            WaitIfStalled();
            lock (_text)
            {
                _text.Append(value);
            }
        }

        public override void Write(string? value)
        {
            WaitIfStalled();
            lock (_text)
            {
                _text.Append(value);
            }
        }

        public override void WriteLine(string? value) => Write(value + "\n");

        private void WaitIfStalled()
        {
            if (!_open.IsSet)
            {
                _writeWaiting.TrySetResult();
            }

            _open.Wait();
        }

        public override string ToString()
        {
            lock (_text)
            {
                return _text.ToString();
            }
        }
    }
}
