namespace Lifeline.IntegrationTests.Infrastructure;

internal static class Wait
{
    /// <summary>Waits for a condition that no event announces (server-side counters), checking often, with a bound.</summary>
    public static async Task UntilAsync(Func<bool> condition, TimeSpan? timeout = null, string? what = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        try
        {
            while (!condition())
            {
                await Task.Delay(20, cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"Timed out waiting for {what ?? "the condition"}.");
        }
    }

    public static async Task<T> ReadAsync<T>(System.Threading.Channels.ChannelReader<T> reader, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        return await reader.ReadAsync(cts.Token);
    }
}
