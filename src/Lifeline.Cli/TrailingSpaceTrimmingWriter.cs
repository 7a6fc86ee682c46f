using System.Text;

namespace Lifeline.Cli;

/// <summary>Passes text through but drops spaces at the end of each line (the padding of table cells).</summary>
internal sealed class TrailingSpaceTrimmingWriter(TextWriter inner) : TextWriter
{
    private int _pendingSpaces;

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        switch (value)
        {
            case ' ':
                _pendingSpaces++;
                return;
            case '\n':
            case '\r':
                _pendingSpaces = 0;
                inner.Write(value);
                return;
            default:
                if (_pendingSpaces > 0)
                {
                    inner.Write(new string(' ', _pendingSpaces));
                    _pendingSpaces = 0;
                }

                inner.Write(value);
                return;
        }
    }

    public override void Write(string? value)
    {
        foreach (var c in value ?? string.Empty)
        {
            Write(c);
        }
    }

    public override void Write(char[] buffer, int index, int count)
    {
        for (var i = index; i < index + count; i++)
        {
            Write(buffer[i]);
        }
    }

    public override void Flush() => inner.Flush();
}
