namespace Lifeline.Diagnostics.IdleScan;

/// <summary>
/// Finds the idle timeout of whatever sits between client and server (a load balancer, proxy or NAT). Connections
/// are held completely silent (no data, no pings) for chosen periods, several at once. A cut that shows itself (RST,
/// FIN, a Close frame) gives the timeout directly: the moment it arrived. A silent drop shows only when a ping after
/// the silence goes unanswered, so the scan narrows the range between the longest silence that survived and the
/// shortest that was killed, round after round, until it is within the resolution.
/// </summary>
public static class IdleScanner
{
    /// <summary>
    /// Runs a scan. Cancelling it ends the scan at once with what was measured so far
    /// (<see cref="IdleScanResult.Interrupted"/>), never a claim that nothing was found. An endpoint that cannot be
    /// reached is reported in <see cref="IdleScanResult.Failure"/>, not thrown.
    /// </summary>
    /// <param name="options">What to scan and how; read once, at start.</param>
    /// <param name="progress">Told of each round and each finished silence, from several tasks at once; may be null.</param>
    /// <param name="cancellationToken">Stops the scan early.</param>
    /// <returns>What the scan found.</returns>
    /// <exception cref="ArgumentException"><see cref="IdleScanOptions.MaxSilence"/> is not larger than <see cref="IdleScanOptions.MinSilence"/>.</exception>
    public static Task<IdleScanResult> ScanAsync(IdleScanOptions options, IProgress<IdleScanProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return RunAsync(options, progress, cancellationToken);

        static async Task<IdleScanResult> RunAsync(IdleScanOptions options, IProgress<IdleScanProgress>? progress, CancellationToken cancellationToken)
        {
            using var run = new IdleScanRun(options, progress);
            return await run.ScanAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The first round's silences: <paramref name="count"/> steps from min to max, each the same factor longer.</summary>
    internal static TimeSpan[] Geometric(TimeSpan min, TimeSpan max, int count)
    {
        if (count == 1)
        {
            return [max];
        }

        var ratio = Math.Pow(max / min, 1.0 / (count - 1));
        return [.. Enumerable.Range(0, count).Select(i => TimeSpan.FromSeconds(Math.Round(min.TotalSeconds * Math.Pow(ratio, i), 3)))];
    }

    /// <summary>A later round's silences: <paramref name="count"/> evenly spaced points strictly between low and high.</summary>
    internal static TimeSpan[] Between(TimeSpan low, TimeSpan high, int count) =>
        [.. Enumerable.Range(1, count).Select(i => low + ((high - low) * i / (count + 1)))];
}
