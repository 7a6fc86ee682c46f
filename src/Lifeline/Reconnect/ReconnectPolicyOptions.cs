using Lifeline.CloseCodes;

namespace Lifeline.Reconnect;

/// <summary>Settings of <see cref="DefaultReconnectPolicy"/>. Every setter rejects values out of range with a message naming the property.</summary>
public sealed class ReconnectPolicyOptions
{
    private TimeSpan _baseDelay = TimeSpan.FromSeconds(1);
    private double _multiplier = 2;
    private TimeSpan _maxDelay = TimeSpan.FromSeconds(30);
    private TimeSpan _tryAgainLaterBaseDelay = TimeSpan.FromSeconds(5);
    private TimeSpan _soonMinDelay = TimeSpan.FromSeconds(1);
    private TimeSpan _soonMaxDelay = TimeSpan.FromSeconds(5);
    private TimeSpan _minHintDelay = TimeSpan.FromMilliseconds(100);
    private TimeSpan _maxHintDelay = TimeSpan.FromMinutes(1);
    private TimeSpan _restartWindow = TimeSpan.FromSeconds(30);
    private TimeSpan _restartRetryMinDelay = TimeSpan.FromMilliseconds(250);
    private TimeSpan _restartRetryMaxDelay = TimeSpan.FromSeconds(3);
    private int? _maxAttempts;
    private TimeSpan? _maxElapsed;
    private Dictionary<int, CloseReaction>? _codeReactions; // created on first use: most clients set none (80 B of an idle client's ~2 KB)

    /// <summary>The first backoff delay before jitter. Default 1 s. Must be positive.</summary>
    public TimeSpan BaseDelay { get => _baseDelay; set => _baseDelay = OptionGuard.Positive(value); }

    /// <summary>The growth factor between attempts. Default 2. At least 1.</summary>
    public double Multiplier
    {
        get => _multiplier;
        set => _multiplier = value >= 1 && double.IsFinite(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(Multiplier), value, "Multiplier must be a finite number of at least 1.");
    }

    /// <summary>The cap on any backoff delay, applied before jitter. Default 30 s. Must be positive.</summary>
    public TimeSpan MaxDelay { get => _maxDelay; set => _maxDelay = OptionGuard.Positive(value); }

    /// <summary>How randomness is mixed in. Default <see cref="JitterMode.Full"/>.</summary>
    public JitterMode Jitter { get; set; } = JitterMode.Full;

    /// <summary>The floor and base of the backoff after 1013 Try Again Later: the delay is this plus a jittered exponential backoff from it. Default 5 s. Must be positive.</summary>
    public TimeSpan TryAgainLaterBaseDelay { get => _tryAgainLaterBaseDelay; set => _tryAgainLaterBaseDelay = OptionGuard.Positive(value); }

    /// <summary>The lower bound of the short random delay after 1012 and 1001. Default 1 s. Zero or more.</summary>
    public TimeSpan SoonMinDelay { get => _soonMinDelay; set => _soonMinDelay = OptionGuard.NotNegative(value); }

    /// <summary>The upper bound of the short random delay after 1012 and 1001. Default 5 s. Must be positive.</summary>
    public TimeSpan SoonMaxDelay { get => _soonMaxDelay; set => _soonMaxDelay = OptionGuard.Positive(value); }

    /// <summary>A server hint shorter than this is raised to it, so no hint can cause a tight loop. Default 100 ms. Must be positive.</summary>
    public TimeSpan MinHintDelay { get => _minHintDelay; set => _minHintDelay = OptionGuard.Positive(value); }

    /// <summary>A server hint longer than this is lowered to it. Default 1 min. Must be positive.</summary>
    public TimeSpan MaxHintDelay { get => _maxHintDelay; set => _maxHintDelay = OptionGuard.Positive(value); }

    /// <summary>
    /// How long after a 1012 or 1001 close refused connects (and 502/503/504 upgrades) count as "the new process
    /// is still starting" and are retried after a random delay from <see cref="RestartRetryMinDelay"/> up to a ceiling
    /// of the time since the connection was lost, at least four times that minimum and at most
    /// <see cref="RestartRetryMaxDelay"/> (defaults: up to 1 s for the first second, growing to 3 s by 3 s), instead of
    /// backing off. Default 30 s (a common shutdown grace period). Zero turns this off.
    /// </summary>
    public TimeSpan RestartWindow { get => _restartWindow; set => _restartWindow = OptionGuard.NotNegative(value); }

    /// <summary>The lower bound of the retry delay inside <see cref="RestartWindow"/>. Default 250 ms. Must be positive.</summary>
    public TimeSpan RestartRetryMinDelay { get => _restartRetryMinDelay; set => _restartRetryMinDelay = OptionGuard.Positive(value); }

    /// <summary>The largest retry delay inside <see cref="RestartWindow"/>, reached 3 s into a restart with the defaults. Default 3 s. Must be positive.</summary>
    public TimeSpan RestartRetryMaxDelay { get => _restartRetryMaxDelay; set => _restartRetryMaxDelay = OptionGuard.Positive(value); }

    /// <summary>Stop after this many consecutive attempts. Default null: no limit. At least 1 when set.</summary>
    public int? MaxAttempts
    {
        get => _maxAttempts;
        set => _maxAttempts = OptionGuard.AtLeastOrNull(value, 1);
    }

    /// <summary>Stop once the connection has been down this long. Default null: no limit. Positive when set.</summary>
    public TimeSpan? MaxElapsed
    {
        get => _maxElapsed;
        set => _maxElapsed = OptionGuard.PositiveOrNull(value, "no limit");
    }

    /// <summary>
    /// Reactions that replace the catalogue's default for given codes, e.g. <c>{ [4001] = CloseReaction.Stop }</c>.
    /// Codes the application owns (3000-4999 without a registration) default to backoff. Default empty.
    /// </summary>
    public IDictionary<int, CloseReaction> CodeReactions => LazyInitializer.EnsureInitialized(ref _codeReactions);

    /// <summary>The reaction set for <paramref name="code"/> in <see cref="CodeReactions"/>, without creating it.</summary>
    internal bool TryGetCodeReaction(int code, out CloseReaction reaction)
    {
        reaction = default;
        return _codeReactions is { } reactions && reactions.TryGetValue(code, out reaction);
    }

    /// <summary>Checks relations between settings; called when a policy is created.</summary>
    public void Validate()
    {
        if (SoonMinDelay > SoonMaxDelay)
        {
            throw new ArgumentException($"SoonMinDelay ({SoonMinDelay}) must not exceed SoonMaxDelay ({SoonMaxDelay}).");
        }

        if (MinHintDelay > MaxHintDelay)
        {
            throw new ArgumentException($"MinHintDelay ({MinHintDelay}) must not exceed MaxHintDelay ({MaxHintDelay}).");
        }

        if (RestartRetryMinDelay > RestartRetryMaxDelay)
        {
            throw new ArgumentException($"RestartRetryMinDelay ({RestartRetryMinDelay}) must not exceed RestartRetryMaxDelay ({RestartRetryMaxDelay}).");
        }

        if (BaseDelay > MaxDelay)
        {
            throw new ArgumentException($"BaseDelay ({BaseDelay}) must not exceed MaxDelay ({MaxDelay}).");
        }
    }
}
