using Lifeline.CloseCodes;
using Lifeline.Reconnect;

namespace Lifeline.Tests.Reconnect;

public class DefaultReconnectPolicyTests
{
    private static ReconnectContext Closed(int code, int attempt = 1, string? reason = null, TimeSpan? hint = null) =>
        new() { Attempt = attempt, Elapsed = TimeSpan.FromSeconds(1), Kind = DisconnectKind.ConnectionClosed, Code = new CloseCode(code), Reason = reason, ServerHint = hint };

    private static DefaultReconnectPolicy Policy(Action<ReconnectPolicyOptions>? configure = null, int seed = 1)
    {
        var options = new ReconnectPolicyOptions();
        configure?.Invoke(options);
        return new DefaultReconnectPolicy(options, new Random(seed));
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(1002)]
    [InlineData(1003)]
    [InlineData(1007)]
    [InlineData(1008)]
    [InlineData(1009)]
    [InlineData(1010)]
    [InlineData(1015)]
    [InlineData(3000)]
    [InlineData(3003)]
    public void NextDelay_StopCodes_ReturnsNull(int code)
    {
        Assert.Null(Policy().NextDelay(Closed(code)));
    }

    [Theory]
    [InlineData(1006)]
    [InlineData(1011)]
    [InlineData(1014)]
    [InlineData(1004)]
    [InlineData(1005)]
    [InlineData(3008)]
    [InlineData(1016)]
    public void NextDelay_BackoffCodes_FullJitterWithinTheExponentialBound(int code)
    {
        var policy = Policy();
        for (var attempt = 1; attempt <= 8; attempt++)
        {
            var bound = Backoff.Exponential(attempt, TimeSpan.FromSeconds(1), 2, TimeSpan.FromSeconds(30));
            for (var i = 0; i < 50; i++)
            {
                var delay = policy.NextDelay(Closed(code, attempt));
                Assert.NotNull(delay);
                Assert.InRange(delay.Value, TimeSpan.Zero, bound);
            }
        }
    }

    [Theory]
    [InlineData(1012)]
    [InlineData(1001)]
    public void NextDelay_RestartOrGoingAway_ShortRandomDelayBetweenOneAndFiveSeconds(int code)
    {
        var policy = Policy();
        var delays = Enumerable.Range(0, 500).Select(_ => policy.NextDelay(Closed(code))!.Value).ToArray();

        Assert.All(delays, d => Assert.InRange(d, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)));
        Assert.Contains(delays, d => d < TimeSpan.FromSeconds(2));
        Assert.Contains(delays, d => d > TimeSpan.FromSeconds(4));
    }

    [Fact]
    public void NextDelay_TryAgainLater_NeverSoonerThanTheLargerBase()
    {
        var policy = Policy(o => o.TryAgainLaterBaseDelay = TimeSpan.FromSeconds(5));
        for (var attempt = 1; attempt <= 6; attempt++)
        {
            var delay = policy.NextDelay(Closed(1013, attempt))!.Value;
            Assert.InRange(delay, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5 + 30));
        }
    }

    [Fact]
    public void NextDelay_TryAgainLater_ClientsShedTogetherComeBackSpreadOut()
    {
        var delays = Enumerable.Range(1, 200).Select(seed => Policy(seed: seed).NextDelay(Closed(1013, attempt: 1))!.Value).ToList();

        Assert.All(delays, d => Assert.True(d >= TimeSpan.FromSeconds(5), $"{d} is sooner than the 5 s base"));
        // Raising a full-jitter delay to the base put about every client at exactly 5 s.
        Assert.True(delays.Count(d => d == TimeSpan.FromSeconds(5)) <= 2, "most clients come back at the same instant");
        Assert.True(delays.Distinct().Count() >= 190, $"only {delays.Distinct().Count()} distinct delays among 200 clients");
        Assert.Contains(delays, d => d > TimeSpan.FromSeconds(8));
    }

    [Theory]
    [InlineData(1012, 2500)]
    [InlineData(1013, 7000)]
    [InlineData(1006, 1234)]
    public void NextDelay_ServerHint_ReplacesTheComputedDelay(int code, int hintMs)
    {
        var hint = TimeSpan.FromMilliseconds(hintMs);
        Assert.Equal(hint, Policy().NextDelay(Closed(code, hint: hint)));
    }

    [Fact]
    public void NextDelay_ServerHint_IsClampedToTheConfiguredBounds()
    {
        var policy = Policy(o =>
        {
            o.MinHintDelay = TimeSpan.FromSeconds(1);
            o.MaxHintDelay = TimeSpan.FromSeconds(10);
        });

        Assert.Equal(TimeSpan.FromSeconds(10), policy.NextDelay(Closed(1012, hint: TimeSpan.FromHours(1))));
        Assert.Equal(TimeSpan.FromSeconds(1), policy.NextDelay(Closed(1012, hint: TimeSpan.FromMilliseconds(5))));
    }

    [Fact]
    public void NextDelay_HintOnAStopCode_StillStops()
    {
        Assert.Null(Policy().NextDelay(Closed(1008, hint: TimeSpan.FromSeconds(2))));
    }

    [Theory]
    [InlineData(4000)]
    [InlineData(4999)]
    [InlineData(3500)]
    public void NextDelay_ApplicationCodes_DefaultToBackoff(int code)
    {
        Assert.NotNull(Policy().NextDelay(Closed(code)));
    }

    [Fact]
    public void NextDelay_PerCodeReaction_OverridesTheDefault()
    {
        var policy = Policy(o =>
        {
            o.CodeReactions[4001] = CloseReaction.Stop;
            o.CodeReactions[4002] = CloseReaction.ReconnectSoon;
            o.CodeReactions[1000] = CloseReaction.ReconnectWithBackoff;
        });

        Assert.Null(policy.NextDelay(Closed(4001)));
        Assert.InRange(policy.NextDelay(Closed(4002))!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
        Assert.NotNull(policy.NextDelay(Closed(1000)));
    }

    [Theory]
    [InlineData(401, false)]
    [InlineData(403, false)]
    [InlineData(404, false)]
    [InlineData(400, false)]
    [InlineData(429, true)]
    [InlineData(503, true)]
    [InlineData(500, true)]
    [InlineData(408, true)]
    public void NextDelay_RejectedHandshake_StopsOnAuthAndMissingPaths_RetriesOnOverload(int status, bool retries)
    {
        var context = new ReconnectContext { Attempt = 1, Elapsed = TimeSpan.Zero, Kind = DisconnectKind.HandshakeRejected, HttpStatusCode = status };
        Assert.Equal(retries, Policy().NextDelay(context).HasValue);
    }

    [Fact]
    public void NextDelay_RejectedWithRetryAfter_WaitsThatLong()
    {
        var context = new ReconnectContext { Attempt = 1, Elapsed = TimeSpan.Zero, Kind = DisconnectKind.HandshakeRejected, HttpStatusCode = 503, ServerHint = TimeSpan.FromSeconds(7) };
        Assert.Equal(TimeSpan.FromSeconds(7), Policy().NextDelay(context));
    }

    [Fact]
    public void NextDelay_ConnectFailed_BacksOff()
    {
        var context = new ReconnectContext { Attempt = 3, Elapsed = TimeSpan.Zero, Kind = DisconnectKind.ConnectFailed };
        Assert.InRange(Policy().NextDelay(context)!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(4));
    }

    [Fact]
    public void NextDelay_PastMaxAttemptsOrMaxElapsed_Stops()
    {
        var policy = Policy(o =>
        {
            o.MaxAttempts = 3;
            o.MaxElapsed = TimeSpan.FromMinutes(1);
        });

        Assert.NotNull(policy.NextDelay(Closed(1006, attempt: 3)));
        Assert.Null(policy.NextDelay(Closed(1006, attempt: 4)));
        Assert.Null(policy.NextDelay(new ReconnectContext { Attempt = 1, Elapsed = TimeSpan.FromMinutes(2), Kind = DisconnectKind.ConnectionClosed, Code = CloseCode.AbnormalClosure }));
    }

    [Fact]
    public void NextDelay_SameSeed_SameDelays()
    {
        var a = Policy(seed: 99);
        var b = Policy(seed: 99);
        for (var attempt = 1; attempt < 10; attempt++)
        {
            Assert.Equal(a.NextDelay(Closed(1006, attempt)), b.NextDelay(Closed(1006, attempt)));
        }
    }

    [Fact]
    public void NextDelay_NoJitter_IsTheExactExponentialSequence()
    {
        var policy = Policy(o => o.Jitter = JitterMode.None);
        var delays = Enumerable.Range(1, 7).Select(a => policy.NextDelay(Closed(1006, a))!.Value.TotalSeconds).ToArray();
        Assert.Equal(new double[] { 1, 2, 4, 8, 16, 30, 30 }, delays);
    }

    [Fact]
    public void Options_OutOfRangeValues_ThrowNamingTheProperty()
    {
        var options = new ReconnectPolicyOptions();
        Assert.Contains("BaseDelay", Assert.Throws<ArgumentOutOfRangeException>(() => options.BaseDelay = TimeSpan.Zero).Message, StringComparison.Ordinal);
        Assert.Contains("Multiplier", Assert.Throws<ArgumentOutOfRangeException>(() => options.Multiplier = 0.5).Message, StringComparison.Ordinal);
        Assert.Contains("Multiplier", Assert.Throws<ArgumentOutOfRangeException>(() => options.Multiplier = double.NaN).Message, StringComparison.Ordinal);
        Assert.Contains("MaxAttempts", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxAttempts = 0).Message, StringComparison.Ordinal);
        Assert.Contains("MaxDelay", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxDelay = TimeSpan.FromSeconds(-1)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxElapsed = TimeSpan.Zero);

        options.SoonMinDelay = TimeSpan.FromSeconds(10);
        var error = Assert.Throws<ArgumentException>(() => new DefaultReconnectPolicy(options));
        Assert.Contains("SoonMinDelay", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1011)]
    [InlineData(1006)]
    [InlineData(1013)]
    public void NextDelay_BackoffCodeWithAZeroHint_NeverBelowTheBackoffNorZero(int code)
    {
        for (var attempt = 1; attempt <= 50; attempt++)
        {
            var withoutHint = Policy(seed: attempt).NextDelay(Closed(code, attempt))!.Value;
            var withHint = Policy(seed: attempt).NextDelay(Closed(code, attempt, "retry-after-ms=0", TimeSpan.Zero))!.Value;

            Assert.True(withHint >= withoutHint, $"attempt {attempt}: the hint lowered {withoutHint} to {withHint}");
            Assert.True(withHint >= TimeSpan.FromMilliseconds(100), $"attempt {attempt}: {withHint} is below the 100 ms floor");
        }
    }

    [Fact]
    public void NextDelay_ZeroHintOnARestart_IsRaisedToTheFloor()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(100), Policy().NextDelay(Closed(1012, hint: TimeSpan.Zero)));
    }

    [Fact]
    public void MinHintDelay_Zero_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReconnectPolicyOptions { MinHintDelay = TimeSpan.Zero });
    }

    [Theory]
    [InlineData(DisconnectKind.ConnectFailed, null)]
    [InlineData(DisconnectKind.HandshakeRejected, 503)]
    [InlineData(DisconnectKind.HandshakeRejected, 502)]
    public void NextDelay_RefusedDuringAnAnnouncedRestart_RetriesOnAShortSchedule(DisconnectKind kind, int? status)
    {
        var policy = Policy();
        for (var attempt = 2; attempt <= 20; attempt++)
        {
            var context = new ReconnectContext
            {
                Attempt = attempt,
                Elapsed = TimeSpan.FromSeconds(attempt),
                Kind = kind,
                HttpStatusCode = status,
                OutageCode = CloseCode.ServiceRestart,
            };

            Assert.InRange(policy.NextDelay(context)!.Value, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3));
        }
    }

    [Theory]
    [InlineData(2, 500, 1000)]    // early in a restart: 250 ms up to 1 s
    [InlineData(7, 800, 1000)]    // a high attempt number (short connections before) does not raise it early on
    [InlineData(3, 1500, 1500)]   // then the time since the loss...
    [InlineData(4, 2000, 2000)]
    [InlineData(5, 3000, 3000)]   // ...up to RestartRetryMaxDelay (3 s)
    [InlineData(12, 20000, 3000)]
    public void NextDelay_RefusedDuringALongRestart_CeilingGrowsWithTheTimeSinceTheLoss(int attempt, int elapsedMs, int ceilingMs)
    {
        // A restart that takes long would otherwise gather every refused client into the same second after the new
        // process is up; a growing ceiling keeps them spread, as the server's hints spread them at first.
        var context = new ReconnectContext
        {
            Attempt = attempt,
            Elapsed = TimeSpan.FromMilliseconds(elapsedMs),
            Kind = DisconnectKind.ConnectFailed,
            OutageCode = CloseCode.ServiceRestart,
        };

        Assert.Equal(ceilingMs, new DefaultReconnectPolicy(null, new FixedRandom(0.999999999)).NextDelay(context)!.Value.TotalMilliseconds, tolerance: 1);
        Assert.Equal(TimeSpan.FromMilliseconds(250), new DefaultReconnectPolicy(null, new FixedRandom(0)).NextDelay(context)!.Value);
    }

    [Fact]
    public void NextDelay_RefusedAfterTheRestartWindow_BacksOffAgain()
    {
        var context = new ReconnectContext
        {
            Attempt = 12,
            Elapsed = TimeSpan.FromSeconds(31),
            Kind = DisconnectKind.ConnectFailed,
            OutageCode = CloseCode.ServiceRestart,
        };

        // Full jitter over a 30 s cap: with this seed far above the restart schedule's 1 s.
        var delays = Enumerable.Range(1, 20).Select(seed => Policy(seed: seed).NextDelay(context)!.Value).ToList();
        Assert.Contains(delays, d => d > TimeSpan.FromSeconds(1));
    }

    [Fact]
    public void NextDelay_RefusedAfterAnAbnormalClosure_BacksOff()
    {
        var context = new ReconnectContext
        {
            Attempt = 12,
            Elapsed = TimeSpan.FromSeconds(5),
            Kind = DisconnectKind.ConnectFailed,
            OutageCode = CloseCode.AbnormalClosure,
        };

        var delays = Enumerable.Range(1, 20).Select(seed => Policy(seed: seed).NextDelay(context)!.Value).ToList();
        Assert.Contains(delays, d => d > TimeSpan.FromSeconds(1));
    }

    [Fact]
    public void NeverReconnectPolicy_AnyContext_ReturnsNull()
    {
        Assert.Null(NeverReconnectPolicy.Instance.NextDelay(Closed(1006)));
        Assert.Null(NeverReconnectPolicy.Instance.NextDelay(Closed(1012, hint: TimeSpan.FromSeconds(1))));
    }

    /// <summary>A random source that always draws the same value: the bounds of a jittered range, exactly.</summary>
    private sealed class FixedRandom(double value) : Random
    {
        public override double NextDouble() => value;
    }
}
