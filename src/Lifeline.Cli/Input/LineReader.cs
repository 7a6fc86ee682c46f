using System.Threading.Channels;

namespace Lifeline.Cli.Input;

/// <summary>
/// Reads lines from stdin on a background thread, each bounded in bytes, and hands them over through a small bounded
/// channel. A blocked read (a terminal, or a pipe nobody writes to) never holds up a command: it awaits the channel with
/// its cancellation token and ends whenever it likes; the thread dies with the process.
/// </summary>
internal static class LineReader
{
    private const int ChunkSize = 64 * 1024;

    /// <summary>Starts reading; a line longer than <paramref name="maxLineBytes"/> is delivered as <see cref="InputLine.TooLong"/>.</summary>
    public static ChannelReader<InputLine> Start(Stream input, int maxLineBytes)
    {
        var channel = Channel.CreateBounded<InputLine>(new BoundedChannelOptions(4)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var thread = new Thread(() => Pump(input, maxLineBytes, channel.Writer)) { IsBackground = true, Name = "lifeline stdin" };
        thread.Start();
        return channel.Reader;
    }

    private static void Pump(Stream input, int maxLineBytes, ChannelWriter<InputLine> writer)
    {
        var chunk = new byte[ChunkSize];
        using var line = new MemoryStream();
        long length = 0;
        long number = 0;
        var pending = false;
        try
        {
            int read;
            while ((read = input.Read(chunk, 0, chunk.Length)) > 0)
            {
                var span = chunk.AsSpan(0, read);
                while (!span.IsEmpty)
                {
                    var newline = span.IndexOf((byte)'\n');
                    var part = newline < 0 ? span : span[..newline];
                    pending = true;
                    length += part.Length;
                    if (length <= maxLineBytes + 1L)
                    {
                        line.Write(part); // one byte past the limit tells a CR-LF line from a line that is too long
                    }

                    if (newline < 0)
                    {
                        break;
                    }

                    if (!Emit(writer, ++number, line, length, maxLineBytes))
                    {
                        return;
                    }

                    line.SetLength(0);
                    length = 0;
                    pending = false;
                    span = span[(newline + 1)..];
                }
            }

            if (pending)
            {
                Emit(writer, ++number, line, length, maxLineBytes);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            // stdin was closed under us: treat as end of input.
        }
        finally
        {
            writer.TryComplete();
        }
    }

    private static bool Emit(ChannelWriter<InputLine> writer, long number, MemoryStream line, long length, int maxLineBytes)
    {
        var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
        if (length <= maxLineBytes + 1L && bytes.Length > 0 && bytes[^1] == (byte)'\r')
        {
            bytes = bytes[..^1];
            length--;
        }

        var item = length > maxLineBytes ? new InputLine(number, null, length) : new InputLine(number, bytes.ToArray(), length);
        while (!writer.TryWrite(item))
        {
            if (!writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult())
            {
                return false;
            }
        }

        return true;
    }
}
