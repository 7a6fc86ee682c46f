using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Lifeline.Cli;

/// <summary>
/// The process's stdout when it is a pipe. <see cref="Console.Out"/> drops a write to a pipe whose reader has gone
/// (EPIPE) without a word, so <c>lifeline connect ... | head -n 2</c> would run on forever after <c>head</c> exits; this
/// writer tells <see cref="Closed"/> instead, and drops what comes after. It also records how long the write under way has
/// been waiting, so that a stop can tell a command stuck on a full pipe nobody reads.
/// </summary>
internal sealed class StdoutPipeWriter : TextWriter
{
    private const int BrokenPipe = 32; // EPIPE, the HResult of the IOException a write to a pipe without a reader throws
    private const int ConnectionReset = 104; // ECONNRESET: the same from a socket
    private const int NonBlockingFlag = 0x800; // O_NONBLOCK on Linux
    private readonly StreamWriter _inner;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private long _writingSince; // timestamp of the write under way, 0 when none
    private int _closed;
    private int _raised; // 1 once Closed was raised

    private StdoutPipeWriter(Stream stdout, TimeProvider time)
    {
        // The runtime's console encoding (from the locale), without the byte-order mark a UTF-8 one would write first.
        var encoding = Console.OutputEncoding.CodePage == Encoding.UTF8.CodePage ? new UTF8Encoding(encoderShouldEmitUTF8Identifier: false) : Console.OutputEncoding;
        _inner = new StreamWriter(stdout, encoding, bufferSize: 4096) { AutoFlush = true };
        _time = time;
    }

    /// <summary>Raised once, on the first write that found the reader gone.</summary>
    public event Action? Closed;

    public override Encoding Encoding => _inner.Encoding;

    /// <summary>Whether the reader has gone.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) == 1;

    /// <summary>
    /// A writer over stdout (file descriptor 1) when it is a blocking pipe or socket; null when it is a terminal, a file
    /// or a device (a file's offset is shared with stderr when both go to it, which only the runtime's writer keeps right),
    /// or non-blocking (the runtime's writer waits and retries a write the pipe cannot take yet; this one could not tell
    /// how much of it went out).
    /// </summary>
    public static StdoutPipeWriter? TryOpen(TimeProvider time)
    {
        if (!OperatingSystem.IsLinux() || !Console.IsOutputRedirected || !IsBlocking(1))
        {
            return null;
        }

        FileStream? stream = null;
        try
        {
            stream = new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
            if (stream.CanSeek)
            {
                stream.Dispose();
                return null;
            }

            return new StdoutPipeWriter(stream, time);
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            stream?.Dispose();
            return null; // no usable descriptor 1: the runtime's writer copes
        }
    }

    /// <summary>How long the write under way has waited for the pipe; zero when none is under way.</summary>
    public TimeSpan WaitingFor => Interlocked.Read(ref _writingSince) is not 0 and var since ? _time.GetElapsedTime(since) : TimeSpan.Zero;

    public override void Write(char value) => Guarded(value, static (writer, c) => writer.Write(c));

    public override void Write(string? value) => Guarded(value, static (writer, text) => writer.Write(text));

    public override void Write(char[] buffer, int index, int count) => Guarded((buffer, index, count), static (writer, part) => writer.Write(part.buffer, part.index, part.count));

    public override void Write(ReadOnlySpan<char> buffer) => Guarded(buffer.ToString(), static (writer, text) => writer.Write(text));

    public override void WriteLine() => Guarded(0, static (writer, _) => writer.WriteLine());

    public override void WriteLine(char value) => Guarded(value, static (writer, c) => writer.WriteLine(c));

    public override void WriteLine(string? value) => Guarded(value, static (writer, text) => writer.WriteLine(text));

    public override void WriteLine(char[] buffer, int index, int count) => Guarded((buffer, index, count), static (writer, part) => writer.WriteLine(part.buffer, part.index, part.count));

    public override void WriteLine(ReadOnlySpan<char> buffer) => Guarded(buffer.ToString(), static (writer, text) => writer.WriteLine(text));

    public override void Flush() => Guarded(0, static (writer, _) => writer.Flush());

    protected override void Dispose(bool disposing)
    {
        // Not while a write waits on a full pipe: that wait holds the lock, and the process must be able to end.
        if (disposing && _lock.TryEnter())
        {
            try
            {
                _inner.Dispose();
            }
            catch (IOException)
            {
                // The reader has gone: nothing left to flush to.
            }
            finally
            {
                _lock.Exit();
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>One write at a time, as <see cref="Console.Out"/> does; a broken pipe ends the writing for good.</summary>
    private void Guarded<T>(T value, Action<StreamWriter, T> write)
    {
        lock (_lock)
        {
            if (IsClosed)
            {
                return;
            }

            Interlocked.Exchange(ref _writingSince, _time.GetTimestamp());
            try
            {
                write(_inner, value);
            }
            catch (IOException e) when (e.HResult is BrokenPipe or ConnectionReset)
            {
                // The runtime ignores SIGPIPE, so the write fails instead of the process ending: the reader has gone, and
                // nothing written from now on can reach anyone. Other errors (a full disk) are thrown, as by Console.Out.
                Volatile.Write(ref _closed, 1);
            }
            finally
            {
                Interlocked.Exchange(ref _writingSince, 0);
            }
        }

        if (IsClosed)
        {
            RaiseClosedOnce();
        }
    }

    /// <summary>Raised on the thread pool, not on the writing thread, which may hold its caller's locks.</summary>
    private void RaiseClosedOnce()
    {
        if (Interlocked.Exchange(ref _raised, 1) == 0 && Closed is { } closed)
        {
            ThreadPool.QueueUserWorkItem(_ => closed());
        }
    }

    /// <summary>Whether a Linux file descriptor is in blocking mode (its flags in /proc, octal, lack O_NONBLOCK).</summary>
    private static bool IsBlocking(int descriptor)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/self/fdinfo/{descriptor}"))
            {
                if (line.StartsWith("flags:", StringComparison.Ordinal))
                {
                    return (Convert.ToInt32(line["flags:".Length..].Trim(), 8) & NonBlockingFlag) == 0;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            // Cannot tell: the runtime's writer.
        }

        return false;
    }
}
