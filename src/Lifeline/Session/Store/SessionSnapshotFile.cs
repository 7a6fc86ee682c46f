using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Lifeline.Session.Wire;

namespace Lifeline.Session.Store;

/// <summary>What came of reading a session snapshot file.</summary>
public enum SessionSnapshotFileStatus
{
    /// <summary>The file was read; <see cref="SessionSnapshotFileResult.Sessions"/> holds its unexpired sessions.</summary>
    Loaded,

    /// <summary>There is no file (a first start, or the last stop was not a graceful drain).</summary>
    Missing,

    /// <summary>The file was written longer ago than the accepted age; its sessions were ignored.</summary>
    Stale,

    /// <summary>The file is damaged, truncated, of another format or version; it was ignored.</summary>
    Corrupt,

    /// <summary>The file exists but could not be read (permissions, I/O error); it was ignored.</summary>
    Unreadable,
}

/// <summary>The outcome of <see cref="SessionSnapshotFile.ReadAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Sessions">The unexpired sessions (empty unless <see cref="SessionSnapshotFileStatus.Loaded"/>).</param>
/// <param name="ExpiredSkipped">Sessions in the file that had already expired.</param>
/// <param name="Detail">Why the file was ignored, for the log; null when loaded or missing.</param>
public sealed record SessionSnapshotFileResult(SessionSnapshotFileStatus Status, IReadOnlyList<SessionSnapshot> Sessions, int ExpiredSkipped, string? Detail);

/// <summary>
/// Saves sessions to a local file on a graceful drain and reads them back on the next start, so that restarting the
/// only server loses nothing. Writing is atomic (a temporary file in the same directory, then a rename over the
/// target). Reading never throws for a missing, stale or damaged file: it returns a result to log and carry on.
/// </summary>
/// <remarks>
/// Layout (version 1): the ASCII magic <c>LLSF</c>, a version byte, the write time as little-endian int64 Unix
/// milliseconds, a varint session count, each session as a varint length and its <see cref="SessionSnapshotSerializer"/>
/// bytes, and finally SHA-256 of everything before it (32 bytes). Stateless and thread-safe; callers must not write
/// the same path concurrently.
/// </remarks>
public static class SessionSnapshotFile
{
    /// <summary>The format version written.</summary>
    public const byte FormatVersion = 1;

    /// <summary>The largest file read (1 GiB); a larger one is reported as corrupt.</summary>
    public const long MaxFileBytes = 1L << 30;

    private const int HeaderLength = 4 + 1 + 8;

    private static ReadOnlySpan<byte> Magic => "LLSF"u8;

    /// <summary>Writes every session to <paramref name="path"/>, replacing any previous file atomically.</summary>
    /// <returns>The number of sessions written.</returns>
    /// <exception cref="IOException">The file could not be written; any previous file is left as it was.</exception>
    public static async Task<int> WriteAsync(string path, IEnumerable<SessionSnapshot> sessions, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(sessions);
        ArgumentNullException.ThrowIfNull(timeProvider);

        var body = new ArrayBufferWriter<byte>();
        var list = sessions.ToList();
        var header = body.GetSpan(HeaderLength + Varint.MaxLength);
        Magic.CopyTo(header);
        header[4] = FormatVersion;
        BinaryPrimitives.WriteInt64LittleEndian(header[5..], timeProvider.GetUtcNow().ToUnixTimeMilliseconds());
        body.Advance(HeaderLength + Varint.Write(header[HeaderLength..], (ulong)list.Count));

        var one = new ArrayBufferWriter<byte>();
        foreach (var session in list)
        {
            one.ResetWrittenCount();
            SessionSnapshotSerializer.Write(one, session);
            body.Advance(Varint.Write(body.GetSpan(Varint.MaxLength), (ulong)one.WrittenCount));
            body.Write(one.WrittenSpan);
        }

        SHA256.HashData(body.WrittenSpan, body.GetSpan(32));
        body.Advance(32);

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(body.WrittenMemory, cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary); // no-op once moved
        }

        return list.Count;
    }

    /// <summary>Reads a file written by <see cref="WriteAsync"/>. Never throws for a bad file (only for cancellation).</summary>
    /// <param name="path">The file.</param>
    /// <param name="timeProvider">The clock that decides staleness and expiry.</param>
    /// <param name="maxFileAge">A file written longer ago than this is <see cref="SessionSnapshotFileStatus.Stale"/>.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    public static async Task<SessionSnapshotFileResult> ReadAsync(string path, TimeProvider timeProvider, TimeSpan maxFileAge, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(timeProvider);
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                return new SessionSnapshotFileResult(SessionSnapshotFileStatus.Missing, [], 0, null);
            }

            if (info.Length > MaxFileBytes)
            {
                return Corrupt($"the file is {info.Length} bytes, over the {MaxFileBytes}-byte limit");
            }

            bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return new SessionSnapshotFileResult(SessionSnapshotFileStatus.Missing, [], 0, null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or System.Security.SecurityException)
        {
            return new SessionSnapshotFileResult(SessionSnapshotFileStatus.Unreadable, [], 0, e.Message);
        }

        return Parse(bytes, timeProvider.GetUtcNow(), maxFileAge);
    }

    private static SessionSnapshotFileResult Parse(ReadOnlySpan<byte> bytes, DateTimeOffset now, TimeSpan maxFileAge)
    {
        if (bytes.Length < HeaderLength + 1 + 32 || !bytes.StartsWith(Magic))
        {
            return Corrupt("not a Lifeline session file");
        }

        if (bytes[4] != FormatVersion)
        {
            return Corrupt($"unsupported format version {bytes[4]}");
        }

        var body = bytes[..^32];
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(body, hash);
        if (!hash.SequenceEqual(bytes[^32..]))
        {
            return Corrupt("checksum mismatch (truncated or damaged)");
        }

        var writtenMs = BinaryPrimitives.ReadInt64LittleEndian(body[5..]);
        if (writtenMs < 0 || writtenMs > 253_402_300_799_999)
        {
            return Corrupt("write time out of range");
        }

        var age = now - DateTimeOffset.FromUnixTimeMilliseconds(writtenMs);
        if (age > maxFileAge)
        {
            return new SessionSnapshotFileResult(SessionSnapshotFileStatus.Stale, [], 0, $"written {age} ago, over the accepted {maxFileAge}");
        }

        var position = HeaderLength;
        if (Varint.TryRead(body[position..], out var count, out var consumed) != SessionFrameError.None || count > (ulong)body.Length)
        {
            return Corrupt("invalid session count");
        }

        position += consumed;
        var sessions = new List<SessionSnapshot>((int)count);
        var expired = 0;
        for (ulong i = 0; i < count; i++)
        {
            if (Varint.TryRead(body[position..], out var length, out consumed) != SessionFrameError.None || length > (ulong)(body.Length - position - consumed))
            {
                return Corrupt($"invalid length of session {i}");
            }

            position += consumed;
            if (!SessionSnapshotSerializer.TryRead(body.Slice(position, (int)length), out var snapshot, out var error))
            {
                return Corrupt($"session {i}: {error}");
            }

            position += (int)length;
            if (snapshot!.IsExpired(now))
            {
                expired++;
            }
            else
            {
                sessions.Add(snapshot);
            }
        }

        return position == body.Length
            ? new SessionSnapshotFileResult(SessionSnapshotFileStatus.Loaded, sessions, expired, null)
            : Corrupt("trailing bytes");
    }

    private static SessionSnapshotFileResult Corrupt(string detail) => new(SessionSnapshotFileStatus.Corrupt, [], 0, detail);
}
