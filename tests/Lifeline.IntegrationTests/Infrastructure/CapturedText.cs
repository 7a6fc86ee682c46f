using System.Text;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>
/// Text written by one part of a test and read by another while it is still being written:
/// <see cref="Writer"/> is a synchronized writer, and <see cref="ToString"/> reads under the writer's own lock.
/// <see cref="Stall"/> makes every write wait, as a program's writes to a full pipe that nobody reads do.
/// </summary>
internal sealed class CapturedText
{
    private readonly StringBuilder _text = new();
    private readonly TextWriter _synchronized;
    private readonly ManualResetEventSlim _open = new(initialState: true);

    public CapturedText()
    {
        _synchronized = TextWriter.Synchronized(new StringWriter(_text));
        Writer = new GatedWriter(_synchronized, _open);
    }

    public TextWriter Writer { get; }

    /// <summary>From now on every write waits until <see cref="Resume"/>.</summary>
    public void Stall() => _open.Reset();

    /// <summary>The waiting writes go on, in the order the writer's lock lets them.</summary>
    public void Resume() => _open.Set();

    /// <summary>The text so far. Each call to the writer is seen whole; a line the program writes in several calls can
    /// still be caught half written, so readers take only the lines that end with a newline.</summary>
    public override string ToString()
    {
        // A synchronized TextWriter locks on itself for every call, so no append is half done under this lock.
        lock (_synchronized)
        {
            return _text.ToString();
        }
    }

    /// <summary>Waits at the gate before each call, outside the synchronized writer's lock, so reading is never held up.</summary>
    private sealed class GatedWriter(TextWriter inner, ManualResetEventSlim open) : TextWriter
    {
        public override Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            open.Wait();
            inner.Write(value);
        }

        public override void Write(char[] buffer, int index, int count)
        {
            open.Wait();
            inner.Write(buffer, index, count);
        }

        public override void Write(string? value)
        {
            open.Wait();
            inner.Write(value);
        }

        public override void WriteLine(string? value)
        {
            open.Wait();
            inner.WriteLine(value);
        }

        public override void Flush()
        {
            open.Wait();
            inner.Flush();
        }

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }

        public override Task FlushAsync()
        {
            Flush();
            return Task.CompletedTask;
        }
    }
}
