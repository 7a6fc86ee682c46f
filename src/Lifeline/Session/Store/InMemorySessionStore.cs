using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lifeline.Session.Store;

/// <summary>
/// The default <see cref="ISessionStore"/>: sessions in process memory, bounded in count and estimated bytes, expired
/// by <see cref="SessionSnapshot.ExpiresAt"/> on the injected clock. On a graceful drain <see cref="SaveToFileAsync"/>
/// writes them to a local file; the next start's <see cref="LoadFromFileAsync"/> reads them back (and deletes the
/// file, so a later crash cannot bring back old state).
/// </summary>
/// <remarks>Thread-safe: every member may be called concurrently; the map changes under one lock.</remarks>
public sealed class InMemorySessionStore : ISessionStore
{
    private readonly Dictionary<SessionId, Entry> _sessions = [];
    private readonly Lock _lock = new();
    private readonly InMemorySessionStoreOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private long _bytes;

    /// <summary>Creates an empty store.</summary>
    /// <param name="options">Bounds; read on every save, so later changes apply. Default bounds when null.</param>
    /// <param name="timeProvider">The clock for expiry. Default <see cref="TimeProvider.System"/>.</param>
    /// <param name="logger">Where file events are logged. Default none.</param>
    public InMemorySessionStore(InMemorySessionStoreOptions? options = null, TimeProvider? timeProvider = null, ILogger<InMemorySessionStore>? logger = null)
    {
        _options = options ?? new InMemorySessionStoreOptions();
        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The number of sessions held (expired ones included until purged or read).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _sessions.Count;
            }
        }
    }

    /// <summary>The estimated bytes held.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <inheritdoc />
    public ValueTask<SessionSnapshot?> TryLoadAsync(SessionId id, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(TryGetLiveLocked(id)?.Snapshot);
        }
    }

    /// <inheritdoc />
    public ValueTask<SessionSnapshot?> TryTakeAsync(SessionId id, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            var entry = TryGetLiveLocked(id);
            if (entry is not null)
            {
                RemoveLocked(id, entry);
            }

            return ValueTask.FromResult(entry?.Snapshot);
        }
    }

    /// <inheritdoc />
    public ValueTask SaveAsync(SessionSnapshot snapshot, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var bytes = snapshot.EstimateBytes();
        lock (_lock)
        {
            _sessions.TryGetValue(snapshot.Id, out var existing);
            var existingBytes = existing?.Bytes ?? 0;
            if (!Fits(existing is null, bytes - existingBytes))
            {
                PurgeExpiredLocked();
                existing = _sessions.GetValueOrDefault(snapshot.Id);
                existingBytes = existing?.Bytes ?? 0;
                if (!Fits(existing is null, bytes - existingBytes))
                {
                    throw new SessionStoreFullException(
                        $"The session store is full ({_sessions.Count} sessions, about {_bytes} bytes; limits {_options.MaxSessions} and {_options.MaxBytes}). " +
                        "Raise InMemorySessionStoreOptions limits or shorten the resume window.");
                }
            }

            _sessions[snapshot.Id] = new Entry(snapshot, bytes);
            _bytes += bytes - existingBytes;
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(SessionId id, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (!_sessions.TryGetValue(id, out var entry))
            {
                return ValueTask.FromResult(false);
            }

            RemoveLocked(id, entry);
            return ValueTask.FromResult(true);
        }
    }

    /// <summary>Removes every expired session; call it from a timer to free memory early.</summary>
    /// <returns>How many were removed.</returns>
    public int PurgeExpired()
    {
        lock (_lock)
        {
            return PurgeExpiredLocked();
        }
    }

    /// <summary>The unexpired sessions, for a drain.</summary>
    public IReadOnlyList<SessionSnapshot> GetAll()
    {
        lock (_lock)
        {
            var now = _timeProvider.GetUtcNow();
            return _sessions.Values.Where(e => !e.Snapshot.IsExpired(now)).Select(e => e.Snapshot).ToList();
        }
    }

    /// <summary>Writes every unexpired session to <paramref name="path"/> atomically (the graceful-drain path).</summary>
    /// <returns>How many sessions were written.</returns>
    /// <exception cref="IOException">The file could not be written; a previous file is left as it was.</exception>
    public async Task<int> SaveToFileAsync(string path, CancellationToken cancellationToken = default)
    {
        var count = await SessionSnapshotFile.WriteAsync(path, GetAll(), _timeProvider, cancellationToken).ConfigureAwait(false);
        SessionStoreLog.FileSaved(_logger, count, path);
        return count;
    }

    /// <summary>
    /// Loads the sessions of a drain file, then deletes the file. A missing, stale, corrupt or unreadable file is
    /// logged and ignored: this never throws except for cancellation.
    /// </summary>
    public async Task<SessionSnapshotFileResult> LoadFromFileAsync(string path, CancellationToken cancellationToken = default)
    {
        var result = await SessionSnapshotFile.ReadAsync(path, _timeProvider, _options.MaxFileAge, cancellationToken).ConfigureAwait(false);
        switch (result.Status)
        {
            case SessionSnapshotFileStatus.Missing:
                SessionStoreLog.FileMissing(_logger, path);
                return result;
            case SessionSnapshotFileStatus.Loaded:
                foreach (var session in result.Sessions)
                {
                    try
                    {
                        await SaveAsync(session, cancellationToken).ConfigureAwait(false);
                    }
                    catch (SessionStoreFullException)
                    {
                        SessionStoreLog.LoadedSessionDropped(_logger, session.Id, path);
                    }
                }

                SessionStoreLog.FileLoaded(_logger, result.Sessions.Count, path, result.ExpiredSkipped);
                break;
            default:
                SessionStoreLog.FileIgnored(_logger, path, result.Status, result.Detail);
                break;
        }

        if (result.Status != SessionSnapshotFileStatus.Unreadable)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                SessionStoreLog.FileNotDeleted(_logger, path, e.Message);
            }
        }

        return result;
    }

    private bool Fits(bool isNew, long extraBytes) =>
        (!isNew || _sessions.Count + 1 <= _options.MaxSessions) && _bytes + extraBytes <= _options.MaxBytes;

    private Entry? TryGetLiveLocked(SessionId id)
    {
        if (!_sessions.TryGetValue(id, out var entry))
        {
            return null;
        }

        if (entry.Snapshot.IsExpired(_timeProvider.GetUtcNow()))
        {
            RemoveLocked(id, entry);
            return null;
        }

        return entry;
    }

    private int PurgeExpiredLocked()
    {
        var now = _timeProvider.GetUtcNow();
        var expired = _sessions.Where(p => p.Value.Snapshot.IsExpired(now)).ToList();
        foreach (var (id, entry) in expired)
        {
            RemoveLocked(id, entry);
        }

        return expired.Count;
    }

    private void RemoveLocked(SessionId id, Entry entry)
    {
        _sessions.Remove(id);
        _bytes -= entry.Bytes;
    }

    private sealed record Entry(SessionSnapshot Snapshot, long Bytes);
}
