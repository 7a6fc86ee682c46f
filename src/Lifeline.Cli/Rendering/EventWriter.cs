using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;

namespace Lifeline.Cli.Rendering;

/// <summary>
/// Writes connection events as JSON lines or as readable text, one line each, never wrapped; safe to call from several
/// threads. Made with <see cref="Queued"/>, a call never waits on stdout: lines go through a bounded queue that one task
/// writes out in order, so a command whose stdout is a full pipe nobody reads goes on working (see <see cref="Queued"/>).
/// </summary>
internal sealed class EventWriter : IAsyncDisposable
{
    /// <summary>How long <see cref="DisposeAsync"/> waits for queued lines to be written before the command ends without them.</summary>
    private static readonly TimeSpan FinalWriteBound = TimeSpan.FromSeconds(2);

    private readonly Lock _lock = new();
    private readonly CliConsole _console;
    private readonly bool _json;
    private readonly TimeProvider _time;
    private readonly Channel<QueuedLine>? _queue;
    private readonly Task _writing = Task.CompletedTask;
    private long _dropped;
    private long _droppedSinceQueued; // under _lock: dropped since the last line queued, reported just before the next
    private DateTimeOffset _firstDropSinceQueued; // under _lock: when the first of those was dropped (the report's time)

    public EventWriter(CliConsole console, bool json, TimeProvider time)
        : this(console, json, time, queueCapacity: null)
    {
    }

    private EventWriter(CliConsole console, bool json, TimeProvider time, int? queueCapacity)
    {
        _console = console;
        _json = json;
        _time = time;
        if (queueCapacity is { } capacity)
        {
            _queue = Channel.CreateBounded<QueuedLine>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
            _writing = Task.Run(WriteQueuedAsync);
        }
    }

    /// <summary>
    /// A writer for a command whose events come from work that must not wait on stdout (the proxy's links, raised
    /// before they forward). Once <paramref name="capacity"/> lines wait, further ones are dropped and counted; an
    /// <c>events-dropped</c> line saying how many comes out where they were, before the next line kept.
    /// </summary>
    public static EventWriter Queued(CliConsole console, bool json, TimeProvider time, int capacity = 10_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        return new EventWriter(console, json, time, capacity);
    }

    /// <summary>Lines dropped so far because the queue was full (a queued writer only).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void Write(EventLine line) => WriteText(_json ? JsonSerializer.Serialize(line, CatalogJson.Compact) : Describe(line));

    /// <summary>A line as it is: a queued writer keeps it in order with the events.</summary>
    public void WriteText(string text)
    {
        lock (_lock)
        {
            if (_queue is null)
            {
                // Plain writes, never through the rich console: a line goes out whole whatever the terminal width.
                _console.Output.WriteLine(text);
                _console.Output.Flush();
                return;
            }

            // No I/O under the lock here: it only keeps each line's count of the drops before it right.
            if (_queue.Writer.TryWrite(new QueuedLine(text, _droppedSinceQueued, _firstDropSinceQueued)))
            {
                _droppedSinceQueued = 0;
                return;
            }

            if (_droppedSinceQueued++ == 0) // full, or the command is ending
            {
                _firstDropSinceQueued = _time.GetUtcNow();
            }

            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>
    /// A queued writer: lets the queued lines out and stops; it waits for them at most two seconds (on its clock), since
    /// stdout may never be read. Dispose it after whatever raises events, so their last lines are kept.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_queue is null)
        {
            return;
        }

        _queue.Writer.TryComplete();
        try
        {
            await _writing.WaitAsync(FinalWriteBound, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // stdout is not read: the command ends without the lines still waiting.
        }
    }

    private async Task WriteQueuedAsync()
    {
        var reader = _queue!.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var queued))
                {
                    WriteDropped(queued.DroppedBefore, queued.FirstDropAt);
                    _console.Output.WriteLine(queued.Text);
                }

                _console.Output.Flush(); // once the queue is empty: a writer that buffers sends a burst in few writes
            }

            long droppedLast;
            DateTimeOffset firstDropAt;
            lock (_lock)
            {
                (droppedLast, firstDropAt) = (_droppedSinceQueued, _firstDropSinceQueued); // after the last line kept
                _droppedSinceQueued = 0;
            }

            WriteDropped(droppedLast, firstDropAt);
            _console.Output.Flush();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // stdout is gone (the reading end closed): nothing more can be written, and the command goes on.
        }
    }

    /// <summary>The report of <paramref name="count"/> dropped lines, stamped with the first drop's time: it stands where they were.</summary>
    private void WriteDropped(long count, DateTimeOffset firstDropAt)
    {
        if (count == 0)
        {
            return;
        }

        var line = new EventLine(firstDropAt, "events-dropped") with
        {
            Data = string.Create(CultureInfo.InvariantCulture,
                $"{count} lines were dropped here: stdout took no lines for a while, and the command went on without waiting for it"),
        };
        _console.Output.WriteLine(_json ? JsonSerializer.Serialize(line, CatalogJson.Compact) : Describe(line));
    }

    /// <summary>A line waiting for stdout, with the number of lines dropped just before it.</summary>
    private readonly record struct QueuedLine(string Text, long DroppedBefore, DateTimeOffset FirstDropAt);

    public EventLine Line(string name) => new(_time.GetUtcNow(), name);

    private static string Describe(EventLine line)
    {
        var at = line.Time.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
        var parts = new List<string> { at, line.Event };
        if (line.Code is { } code)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{code} {Lifeline.CloseCodes.CloseCodeCatalog.Get(new(code)).GetName(CultureInfo.InvariantCulture)}"));
        }

        if (line.Reason is { Length: > 0 } reason)
        {
            parts.Add($"reason \"{reason}\"");
        }

        if (line.CloseFrameReceived is { } frame)
        {
            parts.Add(frame ? "(Close frame received)" : "(no Close frame)");
        }

        if (line.Cause is { } cause)
        {
            parts.Add($"- {cause}");
        }

        if (line.Attempt is { } attempt)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"attempt {attempt}"));
        }

        if (line.DelayMs is { } delay)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"in {delay} ms"));
        }

        if (line.Data is { } data)
        {
            parts.Add(line.Binary == true ? $"(binary, base64) {data}" : data);
        }

        if (line.Session is { } session)
        {
            parts.Add(DescribeSession(session));
        }

        return string.Join(' ', parts);
    }

    private static string DescribeSession(SessionInfo session)
    {
        var parts = new List<string> { $"session {session.Id}" };
        if (session.ReplayedToServer is { } toServer && session.ReplayedFromServer is { } fromServer)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"replayed {toServer} to server, {fromServer} from server"));
        }
        else if (session.Resumed == false && session.LostReason is null)
        {
            parts.Add("(new)");
        }

        if (session.LostReason is { } reason)
        {
            parts.Add(session.Refused == true ? "(resume refused)" : session.LostByServer == true ? $"({reason}, said the server)" : $"({reason})");
            parts.Add($"lost from server {session.LostFromServer}, unconfirmed to server {session.UnconfirmedToServer}");
            if (session.ServerLastReceived is { } last)
            {
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"(server received up to {last})"));
            }
        }

        return string.Join(' ', parts);
    }
}
