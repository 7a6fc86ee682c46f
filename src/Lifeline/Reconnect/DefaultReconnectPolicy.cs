using Lifeline.CloseCodes;

namespace Lifeline.Reconnect;

/// <summary>
/// The close-code-aware policy: stop where retrying cannot help (1000, 1008, 401...), come back soon after a
/// planned restart (1012, 1001), back off exponentially with jitter after failures (1006, 1011, refused
/// connects), back off from a larger base after 1013, and honour the server's retry hint (a hint can lengthen a
/// backoff, never shorten it). Connects refused while a restart announced by 1012 or 1001 is under way are retried
/// on a short schedule inside <see cref="ReconnectPolicyOptions.RestartWindow"/> (250 ms up to 1 s, 2 s, then 3 s).
/// </summary>
/// <remarks>Thread-safe when the random source is (the default, <see cref="Random.Shared"/>, is).</remarks>
public sealed class DefaultReconnectPolicy : IReconnectPolicy
{
    private readonly ReconnectPolicyOptions _options;
    private readonly Random _random;

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
            _ when _options.CodeReactions.TryGetValue(context.Code.Value.Value, out var overridden) => overridden,
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
            return Between(_options.RestartRetryMinDelay, RestartRetryCeiling(context.Attempt));
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
    /// The ceiling for the k-th refused connect (attempt k + 1 of the outage): four times the minimum, doubled per
    /// refusal, capped at <see cref="ReconnectPolicyOptions.RestartRetryMaxDelay"/> (defaults: 1 s, 2 s, then 3 s).
    /// A restart that takes long would otherwise gather every refused client into the same second after the new
    /// process is up, undoing the spread of the server's hints.
    /// </summary>
    private TimeSpan RestartRetryCeiling(int attempt)
    {
        var refusals = Math.Clamp(attempt - 1, 1, 30);
        var ceiling = _options.RestartRetryMinDelay.TotalMilliseconds * 4 * Math.Pow(2, refusals - 1);
        return ceiling >= _options.RestartRetryMaxDelay.TotalMilliseconds ? _options.RestartRetryMaxDelay : TimeSpan.FromMilliseconds(ceiling);
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

        // After 1013 the server asked for room: never come back sooner than the larger base.
        return tryAgainLater ? Max(delay, baseDelay) : delay;
    }

    private static TimeSpan Clamp(TimeSpan value, TimeSpan min, TimeSpan max) => value < min ? min : value > max ? max : value;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
