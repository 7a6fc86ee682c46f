using System.Text;

namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>
/// Text written by one part of a test and read by another while it is still being written:
/// <see cref="Writer"/> is a synchronized writer, and <see cref="ToString"/> reads under the writer's own lock.
/// </summary>
internal sealed class CapturedText
{
    private readonly StringBuilder _text = new();

    public CapturedText() => Writer = TextWriter.Synchronized(new StringWriter(_text));

    public TextWriter Writer { get; }

    /// <summary>The text so far. Each call to the writer is seen whole; a line the program writes in several calls can
    /// still be caught half written, so readers take only the lines that end with a newline.</summary>
    public override string ToString()
    {
        // A synchronized TextWriter locks on itself for every call, so no append is half done under this lock.
        lock (Writer)
        {
            return _text.ToString();
        }
    }
}
