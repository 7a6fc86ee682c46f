namespace Lifeline.Session.Store;

/// <summary>
/// Everything a process needs to resume a session it did not hold: identity and credentials, cursors in both
/// directions, the unacknowledged outbound messages, group memberships, the application's state bag and the expiry.
/// What a <see cref="ISessionStore"/> keeps; <see cref="SessionSnapshotSerializer"/> turns it into bytes.
/// </summary>
/// <remarks>Immutable once built; thread-safe to read.</remarks>
public sealed class SessionSnapshot
{
    /// <summary>The session id.</summary>
    public required SessionId Id { get; init; }

    /// <summary>SHA-256 of the resume token (the token itself is never stored).</summary>
    public required ResumeTokenHash TokenHash { get; init; }

    /// <summary>The authenticated user the session is bound to; null when the connection was anonymous.</summary>
    public string? UserId { get; init; }

    /// <summary>When the session started.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When the session stops being resumable (its socket went away plus the resume window).</summary>
    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary>The sequence the next outbound message gets (1 for a session that sent nothing).</summary>
    public long NextOutboundSequence { get; init; } = 1;

    /// <summary>The last outbound sequence the peer acknowledged.</summary>
    public long OutboundAcknowledged { get; init; }

    /// <summary>The outbound messages sent and not acknowledged, in order: sequences OutboundAcknowledged+1 to NextOutboundSequence-1.</summary>
    public IReadOnlyList<SessionMessage> Unacknowledged { get; init; } = [];

    /// <summary>The last inbound sequence delivered to the application.</summary>
    public long LastInboundDelivered { get; init; }

    /// <summary>The groups the session belongs to.</summary>
    public IReadOnlyList<string> Groups { get; init; } = [];

    /// <summary>The application's state bag (see <see cref="SessionStateBag"/>).</summary>
    public IReadOnlyDictionary<string, string> State { get; init; } = new Dictionary<string, string>();

    /// <summary>Whether the session has expired at <paramref name="now"/>.</summary>
    public bool IsExpired(DateTimeOffset now) => now >= ExpiresAt;

    /// <summary>
    /// Whether a resume with <paramref name="token"/> by <paramref name="userId"/> may take this session: the token's
    /// hash matches (constant time) and, when the session is bound to a user, it is the same user. Both checks always run.
    /// </summary>
    public bool AcceptsResume(ResumeToken token, string? userId)
    {
        var tokenMatches = TokenHash.Matches(token);
        var userMatches = UserId is null || string.Equals(UserId, userId, StringComparison.Ordinal);
        return tokenMatches & userMatches;
    }

    /// <summary>Checks that the cursors and the unacknowledged messages agree; returns the first problem, or null.</summary>
    public string? Validate()
    {
        if (Id.IsEmpty)
        {
            return "empty session id";
        }

        if (NextOutboundSequence < 1 || OutboundAcknowledged < 0 || OutboundAcknowledged >= NextOutboundSequence || LastInboundDelivered < 0)
        {
            return "cursors out of range";
        }

        if (Unacknowledged.Count != NextOutboundSequence - 1 - OutboundAcknowledged)
        {
            return "unacknowledged messages do not match the cursors";
        }

        for (var i = 0; i < Unacknowledged.Count; i++)
        {
            if (Unacknowledged[i].Sequence != OutboundAcknowledged + 1 + i)
            {
                return "unacknowledged messages out of order";
            }
        }

        return null;
    }

    internal long EstimateBytes()
    {
        long bytes = 256 + ((UserId?.Length ?? 0) * 2);
        foreach (var message in Unacknowledged)
        {
            bytes += 32 + message.Payload.Length;
        }

        foreach (var group in Groups)
        {
            bytes += 32 + (group.Length * 2);
        }

        foreach (var (key, value) in State)
        {
            bytes += 64 + ((key.Length + value.Length) * 2);
        }

        return bytes;
    }
}
