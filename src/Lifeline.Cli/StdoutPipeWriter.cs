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
    private readonly StreamWriter _inner;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private long _writingSince; // timestamp of the write under way, 0 when none
    private int _closed;
    private int _raised; // 1 once Closed was raised

    private StdoutPipeWriter(Stream stdout, TimeProvider time)
    {
        _inner = new StreamWriter(stdout, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 4096) { AutoFlush = true };
        _time = time;
    }

    /// <summary>Raised once, on the first write that found the reader gone.</summary>
    public event Action? Closed;

    public override Encoding Encoding => _inner.Encoding;

    /// <summary>Whether the reader has gone.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) == 1;

    /// <summary>
    /// A writer over stdout (file descriptor 1) when it is a pipe or a socket; null when it is a terminal, a file or a
    /// device (a file's offset is shared with stderr when both go to it, which only the runtime's writer keeps right).
    /// </summary>
    public static StdoutPipeWriter? TryOpen(TimeProvider time)
    {
        if (OperatingSystem.IsWindows() || !Console.IsOutputRedirected)
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

    public override void WriteLine(string? value) => Guarded(value, static (writer, text) => writer.WriteLine(text));

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
            catch (IOException)
            {
                // EPIPE (the runtime ignores SIGPIPE, so the write fails instead of the process ending): the reader has
                // gone, and nothing written from now on can reach anyone.
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

    private void RaiseClosedOnce()
    {
        if (Interlocked.Exchange(ref _raised, 1) == 0)
        {
            Closed?.Invoke();
        }
    }
}
