using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace LivePrices.Server;

/// <summary>Settings of the price feed (configuration section "Ticker").</summary>
internal sealed class TickerOptions
{
    /// <summary>Milliseconds between ticks. Default 250.</summary>
    public int IntervalMs { get; set; } = 250;

    /// <summary>Where the feed keeps its position (<c>prices.feed.json</c>). Default: the data directory.</summary>
    public string? FilePath { get; set; }
}

/// <summary>
/// Publishes a random walk of three prices into the <see cref="PriceFeed"/>, numbered so that the numbers run on across
/// restarts. A graceful stop saves the next number, the prices and the recent ticks (sessions resumed by the next process
/// send what they missed from there); a crash leaves only a reservation: the next process starts past every number
/// that may have been published, so a client sees a gap, never a repeat.
/// </summary>
internal sealed class PriceTicker(PriceFeed feed, IOptions<TickerOptions> options, TimeProvider time, ILogger<PriceTicker> logger) : BackgroundService
{
    /// <summary>How many numbers a running feed reserves ahead in its file (the largest gap a crash can leave).</summary>
    public const int ReserveBlock = 1000;

    private static readonly string[] Symbols = ["ACME", "GLOBEX", "INITECH"];

    private readonly string _path = options.Value.FilePath ?? "prices.feed.json";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var prices = Symbols.Select(_ => 100m).ToArray();
        var reserved = Load(prices);
        var random = new Random();
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.IntervalMs), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (feed.Next >= reserved)
                {
                    reserved = Reserve(feed.Next, prices);
                }

                var i = random.Next(Symbols.Length);
                prices[i] = Math.Max(1m, prices[i] + (decimal)(random.NextDouble() - 0.5));
                feed.Publish(seq => string.Create(CultureInfo.InvariantCulture, $"{seq} {Symbols[i]} {prices[i]:F2}"));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Host stopping: save where the feed is, with its recent ticks, for the next process.
        }

        var recent = feed.Recent();
        Write(new FeedFile(feed.Next, feed.Next, true, prices, [.. recent.Select(t => t.Text)]));
        FeedLog.Saved(logger, feed.Next, recent.Count, _path);
    }

    /// <summary>Restores the feed from its file; returns the reservation it wrote for this run.</summary>
    private long Load(decimal[] prices)
    {
        long next = 1;
        IEnumerable<Tick> recent = [];
        if (File.Exists(_path))
        {
            try
            {
                var saved = JsonSerializer.Deserialize<FeedFile>(File.ReadAllText(_path));
                if (saved is not null)
                {
                    saved.Prices.AsSpan(0, Math.Min(saved.Prices.Length, prices.Length)).CopyTo(prices);
                    (next, recent) = saved.Clean ? (saved.Next, saved.Recent.Select(Parse).ToList()) : (saved.Reserved, []);
                    if (saved.Clean)
                    {
                        FeedLog.Resumed(logger, next, _path);
                    }
                    else
                    {
                        FeedLog.AfterCrash(logger, next, _path);
                    }
                }
            }
            catch (Exception e) when (e is JsonException or IOException or FormatException)
            {
                FeedLog.Unreadable(logger, e, _path);
            }
        }

        feed.Restore(next, recent);
        return Reserve(next, prices);
    }

    private long Reserve(long next, decimal[] prices)
    {
        var reserved = next + ReserveBlock;
        Write(new FeedFile(next, reserved, false, prices, []));
        return reserved;
    }

    private void Write(FeedFile file)
    {
        var temp = _path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(file));
        File.Move(temp, _path, overwrite: true);
    }

    private static Tick Parse(string text) => new(long.Parse(text.AsSpan(0, text.IndexOf(' ', StringComparison.Ordinal)), CultureInfo.InvariantCulture), text);

    /// <summary>The feed's file: the next number, the reservation (a crash restarts there), whether a graceful stop wrote it.</summary>
    private sealed record FeedFile(long Next, long Reserved, bool Clean, decimal[] Prices, string[] Recent);
}

/// <summary>The feed's log messages.</summary>
internal static partial class FeedLog
{
    [LoggerMessage(1, LogLevel.Information, "Price feed resumed at {Next} from {Path} (saved by a graceful stop)")]
    public static partial void Resumed(ILogger logger, long next, string path);

    [LoggerMessage(2, LogLevel.Warning, "Price feed starts at {Next}: {Path} was not saved by a graceful stop (a crash?), so ticks before that number may have been published")]
    public static partial void AfterCrash(ILogger logger, long next, string path);

    [LoggerMessage(3, LogLevel.Warning, "Price feed file {Path} unreadable; starting at 1")]
    public static partial void Unreadable(ILogger logger, Exception exception, string path);

    [LoggerMessage(4, LogLevel.Information, "Price feed saved at {Next} with {Count} recent ticks to {Path}")]
    public static partial void Saved(ILogger logger, long next, int count, string path);

    [LoggerMessage(5, LogLevel.Information, "Sessions and the price feed are kept in {Directory}")]
    public static partial void DataDirectory(ILogger logger, string directory);
}
