using Lifeline.CloseCodes;

namespace Lifeline.Reconnect;

/// <summary>
/// The close-code-aware policy: stop where retrying cannot help (1000, 1008, 401...), come back soon after a
/// planned restart (1012, 1001), back off exponentially with jitter after failures (1006, 1011, refused
/// connects), back off from a larger base after 1013, and honour the server's retry hint (a hint can lengthen a
/// backoff, never shorten it). Connects refused while a restart announced by 1012 or 1001 is under way are retried
/// on a short schedule inside <see cref="ReconnectPolicyOptions.RestartWindow"/> (from 250 ms up to a ceiling that grows
/// from 1 s to 3 s with the time since the connection was lost).
/// </summary>
/// <remarks>Thread-safe when the random source is (the default, <see cref="Random.Shared"/>, is).</remarks>
public sealed class DefaultReconnectPolicy : IReconnectPolicy
{
    private readonly ReconnectPolicyOptions _options;
    private readonly Random _random;

    /// <summary>
    /// The policy with default options, shared by every client options object that keeps the default: the policy holds
    /// no state of its own and its options cannot be reached from outside, so one serves all (an instance of its own
    /// with its options would cost 176 B per idle client).
    /// </summary>
    internal static DefaultReconnectPolicy WithDefaults { get; } = new();

    /// <summary>Creates the policy.</summary>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <param name="random">The random source for jitter; tests pass a seeded one. Default <see cref="Random.Shared"/>.</param>
    public DefaultReconnectPolicy(ReconnectPolicyOptions? options = null, Random? random = null)
    {
        _options = options ?? new ReconnectPolicyOptions();
        _options.Validate();
        _random = random ?? Random.Shared;
    }

    /// <summary>The reaction the policy applies to a context, before limits and delays.</summary>
    public CloseReaction ReactionFor(ReconnectContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Kind switch
        {
            DisconnectKind.HandshakeRejected => context.HttpStatusCode switch
            {
                401 or 403 or 404 => CloseReaction.Stop,
                408 or 429 => CloseReaction.ReconnectWithBackoff,
                >= 400 and < 500 => CloseReaction.Stop,
                _ => CloseReaction.ReconnectWithBackoff,
            },
            DisconnectKind.ConnectFailed => CloseReaction.ReconnectWithBackoff,
            _ when context.Code is not { } code => CloseReaction.ReconnectWithBackoff,
            _ when _options.TryGetCodeReaction(context.Code.Value.Value, out var overridden) => overridden,
            _ => context.Code.Value.Info.DefaultReaction switch
            {
                CloseReaction.ApplicationDecides => CloseReaction.ReconnectWithBackoff,
                var reaction => reaction,
            },
        };
    }

    /// <inheritdoc />
    public TimeSpan? NextDelay(ReconnectContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_options.MaxAttempts is { } maxAttempts && context.Attempt > maxAttempts)
        {
            return null;
        }

        if (_options.MaxElapsed is { } maxElapsed && context.Elapsed >= maxElapsed)
        {
            return null;
        }

        var reaction = ReactionFor(context);
        if (reaction == CloseReaction.Stop)
        {
            return null;
        }

        if (IsRefusedDuringAnnouncedRestart(context))
        {
            // The server said it is restarting: the new process is still starting. Knock again soon rather than
            // drifting into a long backoff that would keep clients away after it is up.
            return Between(_options.RestartRetryMinDelay, RestartRetryCeiling(context.Elapsed));
        }

        var hint = context.ServerHint is { } h ? Clamp(h, _options.MinHintDelay, _options.MaxHintDelay) : (TimeSpan?)null;
        if (reaction == CloseReaction.ReconnectSoon)
        {
            return hint ?? Between(_options.SoonMinDelay, _options.SoonMaxDelay);
        }

        // Backoff codes (1006, 1011, 1013, failed attempts): a hint may ask for a longer wait, never a shorter one,
        // so a server sending retry-after-ms=0 cannot drive clients into a tight loop.
        var backoff = BackoffDelay(context);
        return hint is { } longer && longer > backoff ? longer : backoff;
    }

    private bool IsRefusedDuringAnnouncedRestart(ReconnectContext context) =>
        context.OutageCode is { } code
        && code.Info.DefaultReaction == CloseReaction.ReconnectSoon
        && context.Elapsed < _options.RestartWindow
        && (context.Kind == DisconnectKind.ConnectFailed
            || (context.Kind == DisconnectKind.HandshakeRejected && context.HttpStatusCode is 502 or 503 or 504));

    /// <summary>
    /// The ceiling of the retry delay for a connect refused <paramref name="elapsed"/> after the connection was lost:
    /// that time itself, at least four times the minimum, at most <see cref="ReconnectPolicyOptions.RestartRetryMaxDelay"/>
    /// (defaults: 1 s for the first second, growing to 3 s by 3 s). The clients refused while the new process starts
    /// gather for as long as it takes to start; spreading each one's next knock over as long as it has been away
    /// brings the whole group back at no more than the rate the server's hints sent them (with half that time, they
    /// all came back in the second after the new process listened: the restart storm's peak, table 4 of the run log,
    /// docs/benchmarks-history.md). Time, not the attempt number, sets it: a client whose last connection was short
    /// already has a higher attempt number.
    /// </summary>
    private TimeSpan RestartRetryCeiling(TimeSpan elapsed)
    {
        var floor = _options.RestartRetryMinDelay * 4;
        var ceiling = elapsed > floor ? elapsed : floor;
        return ceiling < _options.RestartRetryMaxDelay ? ceiling : _options.RestartRetryMaxDelay;
    }

    private TimeSpan Between(TimeSpan min, TimeSpan max)
    {
#pragma warning disable CA5394 // Spread, not secrecy.
        return min + TimeSpan.FromTicks((long)(_random.NextDouble() * (max - min).Ticks));
#pragma warning restore CA5394
    }

    private TimeSpan BackoffDelay(ReconnectContext context)
    {
        var tryAgainLater = context.Code == CloseCode.TryAgainLater;
        var baseDelay = tryAgainLater ? _options.TryAgainLaterBaseDelay : _options.BaseDelay;
        var cap = tryAgainLater ? Max(_options.MaxDelay, baseDelay) : _options.MaxDelay;
        var capped = Backoff.Exponential(context.Attempt, baseDelay, _options.Multiplier, cap);
        var delay = Backoff.Jitter(_options.Jitter, capped, baseDelay, cap, context.PreviousDelay, _random);

        // After 1013 the server asked for room: never come back sooner than the larger base, and spread above it. (Raising
        // the jittered delay to the base instead would bring most clients shed together back at the same instant.)
        return tryAgainLater ? baseDelay + delay : delay;
    }

    private static TimeSpan Clamp(TimeSpan value, TimeSpan min, TimeSpan max) => value < min ? min : value > max ? max : value;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
