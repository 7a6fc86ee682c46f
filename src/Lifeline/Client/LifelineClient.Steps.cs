using System.Net.WebSockets;

namespace Lifeline.Client;

// The connection loop's current step (a connect attempt, a reconnect wait, an open connection) has a token source of its
// own, which the stop cancels directly: at the stop's request (connect attempts and waits) or only when the stop aborts
// (a session handshake and an open connection, which a stop first closes gracefully). Linking each step to the client's stop tokens would do the
// same, but every registration leaves a node on those long-lived sources: an idle client would carry them for its life.
public sealed partial class LifelineClient
{
    private CancellationTokenSource? _step; // guarded by _stateLock
    private bool _stepEndsOnRequest;

    /// <summary>Starts a step; it is cancelled at once when the stop that ends it has already come.</summary>
    private CancellationTokenSource BeginStep(bool endsOnRequest, TimeSpan? timeout = null)
    {
        var step = timeout is { } limit ? new CancellationTokenSource(limit, _time) : new CancellationTokenSource();
        lock (_stateLock)
        {
            _step = step;
            _stepEndsOnRequest = endsOnRequest;
            if (_aborting || (endsOnRequest && _stopRequest is not null))
            {
                step.Cancel();
            }
        }

        return step;
    }

    private void EndStep(CancellationTokenSource step)
    {
        lock (_stateLock)
        {
            if (_step == step)
            {
                _step = null;
            }
        }

        step.Dispose();
    }

    /// <summary>True once the stop gave up on grace: the loop ends whatever it was doing.</summary>
    private bool Aborting
    {
        get
        {
            lock (_stateLock)
            {
                return _aborting;
            }
        }
    }

    /// <summary>
    /// For the stop: cancels the current step if it ends at this stage. <paramref name="aborting"/>: the stop gives up on
    /// grace; every step ends from now on, and the open socket is aborted and the receive loop woken, since its socket
    /// reads and short waits take no token.
    /// </summary>
    private async Task CancelStepAsync(bool aborting)
    {
        CancellationTokenSource? step;
        ClientWebSocket? socket;
        lock (_stateLock)
        {
            _aborting |= aborting;
            step = aborting || _stepEndsOnRequest ? _step : null;
            socket = aborting ? _currentSocket : null;
        }

        if (socket is not null)
        {
            socket.Abort();
            WakeLoop();
        }

        if (step is null)
        {
            return;
        }

        try
        {
            await step.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // That step ended meanwhile.
        }
    }
}
