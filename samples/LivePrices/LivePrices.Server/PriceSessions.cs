using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using Lifeline.AspNetCore;

namespace LivePrices.Server;

/// <summary>
/// One session (not one socket: it runs on across reconnects and, after a graceful restart, in the next process).
/// Commands in (<c>subscribe prices</c>, <c>unsubscribe prices</c>); ticks out, each sent together with the session's
/// position in the feed, so that the position and what was sent are saved together at a drain.
/// </summary>
internal static class PriceSessions
{
    /// <summary>The subscribers: membership is kept by the session, so it survives reconnects and restarts.</summary>
    public const string Group = "prices";

    /// <summary>The session state key of the next tick number this session sends.</summary>
    private const string NextKey = "next";

    private const int Batch = 256;

    public static async Task HandleAsync(LifelineSession session, PriceFeed feed, CancellationToken cancellationToken)
    {
        // A resumed session (same process or the next one) comes back with its group and its position: it simply carries
        // on from there, first with the ticks published while its client was away, then live.
        Task<bool>? command = null;
        try
        {
            while (true)
            {
                while (session.Messages.TryRead(out var message))
                {
                    await HandleCommandAsync(session, feed, message.Text.Trim(), cancellationToken);
                }

                long? next = session.Groups.Contains(Group) && session.State.TryGetValue(NextKey, out var saved)
                    ? long.Parse(saved, CultureInfo.InvariantCulture)
                    : null;
                if (next is { } from && await SendTicksAsync(session, feed, from, cancellationToken))
                {
                    continue;
                }

                // Wait for a command or the next tick.
                command ??= session.Messages.WaitToReadAsync(cancellationToken).AsTask();
                if (next is { } waitFrom && await Task.WhenAny(command, feed.WaitForAsync(waitFrom, cancellationToken)) != command)
                {
                    continue;
                }

                if (!await command)
                {
                    return; // the session ended
                }

                command = null;
            }
        }
        catch (InvalidOperationException) when (cancellationToken.IsCancellationRequested)
        {
            // The session can no longer send: handed to the store by a drain (the next process continues it) or ended.
        }
    }

    /// <summary>Sends the ticks from <paramref name="from"/> on that are published; false when there were none.</summary>
    private static async Task<bool> SendTicksAsync(LifelineSession session, PriceFeed feed, long from, CancellationToken cancellationToken)
    {
        if (!feed.TryRead(from, Batch, out var ticks, out var resumeAt))
        {
            // Older than the feed keeps (or ahead of it): say so rather than skip silently, and carry on from there.
            await session.SendAsync(Text($"missed {from}-{resumeAt - 1}"), WebSocketMessageType.Text,
                state => state.Set(NextKey, resumeAt.ToString(CultureInfo.InvariantCulture)), cancellationToken);
            return true;
        }

        foreach (var tick in ticks)
        {
            // The tick and the new position in one step: a drain saves both or neither, so no gap and no repeat.
            await session.SendAsync(Text(tick.Text), WebSocketMessageType.Text,
                state => state.Set(NextKey, (tick.Sequence + 1).ToString(CultureInfo.InvariantCulture)), cancellationToken);
        }

        return ticks.Count > 0;
    }

    private static async Task HandleCommandAsync(LifelineSession session, PriceFeed feed, string command, CancellationToken cancellationToken)
    {
        switch (command)
        {
            case "subscribe prices":
                session.JoinGroup(Group);
                var live = session.State.TryGetValue(NextKey, out var current) ? long.Parse(current, CultureInfo.InvariantCulture) : feed.Next;
                await session.SendAsync(Text($"subscribed prices from {live}"), WebSocketMessageType.Text,
                    state => state.Set(NextKey, live.ToString(CultureInfo.InvariantCulture)), cancellationToken);
                break;
            case "unsubscribe prices":
                session.LeaveGroup(Group);
                await session.SendAsync(Text("unsubscribed prices"), WebSocketMessageType.Text, state => state.Remove(NextKey), cancellationToken);
                break;
            default:
                await session.SendTextAsync("error unknown command (try: subscribe prices)", cancellationToken);
                break;
        }
    }

    private static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);
}
