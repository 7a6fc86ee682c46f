using Lifeline.CloseCodes;

namespace Lifeline.Reconnect;

/// <summary>
/// The close-code-aware policy: stop where retrying cannot help (1000, 1008, 401...), come back soon after a
/// planned restart (1012, 1001), back off exponentially with jitter after failures (1006, 1011, refused
/// connects), back off from a larger base after 1013, and honour the server's retry hint.
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
            _ when context.CloseCode is not { } code => CloseReaction.ReconnectWithBackoff,
            _ when _options.CodeReactions.TryGetValue(context.CloseCode.Value.Value, out var overridden) => overridden,
            _ => context.CloseCode.Value.Info.DefaultReaction switch
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

        if (context.ServerHint is { } hint)
        {
            return Clamp(hint, _options.MinHintDelay, _options.MaxHintDelay);
        }

        if (reaction == CloseReaction.ReconnectSoon)
        {
#pragma warning disable CA5394 // Spread, not secrecy.
            var span = (_options.SoonMaxDelay - _options.SoonMinDelay).Ticks;
            return _options.SoonMinDelay + TimeSpan.FromTicks((long)(_random.NextDouble() * span));
#pragma warning restore CA5394
        }

        return BackoffDelay(context);
    }

    private TimeSpan BackoffDelay(ReconnectContext context)
    {
        var tryAgainLater = context.CloseCode == CloseCode.TryAgainLater;
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
