using System.Globalization;
using Lifeline.AspNetCore;
using Microsoft.Extensions.Options;

namespace LivePrices.Server;

/// <summary>Settings of the price feed (configuration section "Ticker").</summary>
internal sealed class TickerOptions
{
    /// <summary>Milliseconds between ticks. Default 250.</summary>
    public int IntervalMs { get; set; } = 250;
}

/// <summary>Publishes a random walk of three prices to the "prices" group.</summary>
internal sealed class PriceTicker(LifelineConnectionRegistry registry, IOptions<TickerOptions> options, TimeProvider time) : BackgroundService
{
    private static readonly string[] Symbols = ["ACME", "GLOBEX", "INITECH"];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var prices = Symbols.Select(_ => 100m).ToArray();
        var random = new Random();
        long sequence = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.IntervalMs), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var i = random.Next(Symbols.Length);
                prices[i] = Math.Max(1m, prices[i] + (decimal)(random.NextDouble() - 0.5));
                var tick = string.Create(CultureInfo.InvariantCulture, $"{++sequence} {Symbols[i]} {prices[i]:F2}");
                await registry.SendToGroupAsync(PriceSubscriptions.Group, tick, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Host stopping.
        }
    }
}
