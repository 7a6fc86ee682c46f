using System.Runtime.CompilerServices;

namespace Lifeline.AspNetCore;

/// <summary>
/// Marks the asynchronous flow a session's handler runs in, and whatever it starts (its awaits, its own tasks), while
/// the handler runs. A send made there while the handler holds a message is the handler's answer to it; a send from
/// elsewhere (a background service pushing to the session) is not, so it does not mark the held message delivered
/// before the handler is done with it: a crash in between would otherwise lose a message the client was told had been
/// handled.
/// </summary>
internal static class SessionHandlerFlow
{
    private static readonly AsyncLocal<StrongBox<LifelineSession?>?> Current = new();

    /// <summary>Runs <paramref name="handler"/> in a flow marked as <paramref name="session"/>'s handler.</summary>
    public static async Task RunAsync(LifelineSession session, Func<LifelineSession, CancellationToken, Task> handler, CancellationToken cancellationToken)
    {
        // Set inside this async method: the caller's flow is restored when it returns. The mark is cleared at the end,
        // so that a timer or loop the handler left behind neither keeps the session in memory nor answers for it.
        var mark = new StrongBox<LifelineSession?>(session);
        Current.Value = mark;
        try
        {
            await handler(session, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            mark.Value = null;
        }
    }

    /// <summary>Whether the calling code runs in <paramref name="session"/>'s handler flow, while the handler runs.</summary>
    public static bool IsHandlerOf(LifelineSession session) => ReferenceEquals(Current.Value?.Value, session);
}
