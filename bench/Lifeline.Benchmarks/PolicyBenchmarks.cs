using System.Text.RegularExpressions;
using BenchmarkDotNet.Attributes;
using Lifeline.CloseCodes;
using Lifeline.Protocol;
using Lifeline.Reconnect;

namespace Lifeline.Benchmarks;

/// <summary>
/// The decisions taken on every close: the policy's delay and the hint parse. The baselines are a fixed delay table
/// (SignalR's 0, 2, 10, 30 s) and a regular expression for the hint.
/// </summary>
[MemoryDiagnoser]
public partial class PolicyBenchmarks
{
    private static readonly TimeSpan[] FixedDelays = [TimeSpan.Zero, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30)];
    private readonly DefaultReconnectPolicy _policy = new(random: new Random(1));
    private readonly ReconnectContext _abnormal = new() { Attempt = 3, Elapsed = TimeSpan.FromSeconds(4), Kind = DisconnectKind.ConnectionClosed, Code = CloseCode.AbnormalClosure };
    private readonly ReconnectContext _restart = new() { Attempt = 1, Elapsed = TimeSpan.Zero, Kind = DisconnectKind.ConnectionClosed, Code = CloseCode.ServiceRestart, Reason = "Service Restart; retry-after-ms=2350", ServerHint = TimeSpan.FromMilliseconds(2350) };
    private const string Reason = "Service Restart; retry-after-ms=2350";

    [Benchmark(Baseline = true)]
    public TimeSpan? FixedDelayTable() => _abnormal.Attempt <= FixedDelays.Length ? FixedDelays[_abnormal.Attempt - 1] : null;

    [Benchmark]
    public TimeSpan? DefaultPolicy_1006() => _policy.NextDelay(_abnormal);

    [Benchmark]
    public TimeSpan? DefaultPolicy_1012WithHint() => _policy.NextDelay(_restart);

    [Benchmark]
    public TimeSpan RetryHint_Regex()
    {
        var match = HintRegex().Match(Reason);
        return match.Success ? TimeSpan.FromMilliseconds(long.Parse(match.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture)) : TimeSpan.Zero;
    }

    [Benchmark]
    public TimeSpan RetryHint_TryParse() => RetryHint.TryParse(Reason, out var delay) ? delay : TimeSpan.Zero;

    [GeneratedRegex(@"(?:^|[^A-Za-z0-9])retry-after-ms=(\d+)(?![A-Za-z])", RegexOptions.IgnoreCase)]
    private static partial Regex HintRegex();
}
