using Microsoft.Extensions.Logging;

namespace Lifeline.Session.Store;

internal static partial class SessionStoreLog
{
    [LoggerMessage(201, LogLevel.Information, "Saved {Count} sessions to {Path}.")]
    public static partial void FileSaved(ILogger logger, int count, string path);

    [LoggerMessage(202, LogLevel.Information, "Loaded {Count} sessions from {Path} ({Expired} had expired).")]
    public static partial void FileLoaded(ILogger logger, int count, string path, int expired);

    [LoggerMessage(203, LogLevel.Debug, "No session file at {Path}; starting without saved sessions.")]
    public static partial void FileMissing(ILogger logger, string path);

    [LoggerMessage(204, LogLevel.Warning, "Ignored the session file {Path} ({Status}: {Detail}); starting without saved sessions. Resumes will be answered 'session lost'.")]
    public static partial void FileIgnored(ILogger logger, string path, SessionSnapshotFileStatus status, string? detail);

    [LoggerMessage(205, LogLevel.Warning, "Could not delete the consumed session file {Path}: {Detail}.")]
    public static partial void FileNotDeleted(ILogger logger, string path, string detail);

    [LoggerMessage(206, LogLevel.Warning, "Session {SessionId} from {Path} was not loaded: the store is full.")]
    public static partial void LoadedSessionDropped(ILogger logger, SessionId sessionId, string path);
}
