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

    /// <summary>The text so far; it can end inside a line, because a WriteLine is written as text, then newline.</summary>
    public override string ToString()
    {
        // A synchronized TextWriter locks on itself for every call, so no append is half done under this lock.
        lock (Writer)
        {
            return _text.ToString();
        }
    }
}
