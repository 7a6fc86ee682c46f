// Live prices: a Lifeline server that publishes price ticks to the subscribers of the "prices" group.
// Clients send "subscribe prices" / "unsubscribe prices"; every tick is "<seq> <symbol> <price>".
// Stop it with Ctrl-C or SIGTERM: every client gets 1012 Service Restart with its own retry hint and comes back
// to the next process on the same address.
using LivePrices.Server;
using Microsoft.Extensions.FileProviders;

// Content root: the program's folder, where appsettings.json and page/ are copied.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

// Sessions (lifeline.v1: both directions numbered, acknowledged and replayed on resume) are the one switch
// "Sessions" once the Lifeline version in use has them; until then the sample runs in plain mode.
if (builder.Configuration.GetValue("Sessions", false))
{
    Console.Error.WriteLine("error: this Lifeline version has no sessions yet; run without --Sessions=true");
    return 2;
}

builder.Services.AddLifeline(o =>
{
    o.DrainTimeout = TimeSpan.FromSeconds(10);
    o.RestartHintMin = TimeSpan.FromMilliseconds(200);   // spread the returning clients over 0.2-1 s
    o.RestartHintMax = TimeSpan.FromSeconds(1);
});
builder.Services.Configure<TickerOptions>(builder.Configuration.GetSection("Ticker"));
builder.Services.AddHostedService<PriceTicker>();

var app = builder.Build();

// The browser page and lifeline.js, copied next to the program at build time.
var page = new PhysicalFileProvider(Path.Combine(AppContext.BaseDirectory, "page"));
app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = page });
app.UseStaticFiles(new StaticFileOptions { FileProvider = page });

app.MapLifelineHealth("/health");
app.MapLifeline("/prices", PriceSubscriptions.HandleAsync);

app.Run();
return 0;
