using Lifeline.Session;
using Lifeline.Session.Store;

namespace Lifeline.Redis.Tests;

internal static class Snapshots
{
    public static SessionSnapshot Create(TimeSpan window, int unacknowledged = 2)
    {
        var token = ResumeToken.Create();
        var messages = Enumerable.Range(1, unacknowledged)
            .Select(i => new SessionMessage(10 + i, i % 2 == 0, new byte[] { (byte)i, 2, 3 }))
            .ToArray();
        return new SessionSnapshot
        {
            Id = token.DeriveSessionId(),
            TokenHash = token.ComputeHash(),
            UserId = "alice",
            CreatedAt = TimeProvider.System.GetUtcNow(),
            ExpiresAt = TimeProvider.System.GetUtcNow() + window,
            NextOutboundSequence = 11 + unacknowledged,
            OutboundAcknowledged = 10,
            Unacknowledged = messages,
            LastInboundDelivered = 7,
            Groups = ["room-1"],
            State = new Dictionary<string, string> { ["k"] = "v" },
        };
    }

    public static SessionMessage[] Messages(long first, int count) =>
        Enumerable.Range(0, count).Select(i => new SessionMessage(first + i, i % 2 == 0, new byte[] { (byte)i, 42 })).ToArray();
}
