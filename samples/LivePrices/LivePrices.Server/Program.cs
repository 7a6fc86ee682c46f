// Live prices: a Lifeline session server that streams numbered price ticks to the sessions in the "prices" group.
// Clients send "subscribe prices" / "unsubscribe prices"; every tick is "<seq> <symbol> <price>".
// Stop it with Ctrl-C or SIGTERM: every client gets 1012 Service Restart with its own retry hint, the sessions are saved
// to the drain file and the feed's position to its own file, and the next process on the same address resumes them:
// each client gets the ticks it missed, none twice, and then the live ones.
using LivePrices.Server;
using Microsoft.Extensions.FileProviders;

// Content root: the program's folder, where appsettings.json and page/ are copied.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

// Where the sessions (drain file) and the feed's position are kept between runs. Default: data/ beside the program.
var data = Path.GetFullPath(builder.Configuration.GetValue<string>("DataDirectory") ?? Path.Combine(AppContext.BaseDirectory, "data"));
Directory.CreateDirectory(data);

builder.Services.AddLifeline(o =>
{
    o.DrainTimeout = TimeSpan.FromSeconds(10);
    o.RestartHintMin = TimeSpan.FromMilliseconds(200);   // spread the returning clients over 0.2-1 s
    o.RestartHintMax = TimeSpan.FromSeconds(1);
});
builder.Services.AddLifelineSessions(o =>
{
    o.ResumeWindow = TimeSpan.FromMinutes(2);             // a client may be away this long and still get everything
    o.DrainFilePath = Path.Combine(data, "sessions.bin"); // written on a graceful stop, read on start
});
builder.Services.Configure<TickerOptions>(builder.Configuration.GetSection("Ticker"));
builder.Services.PostConfigure<TickerOptions>(o => o.FilePath ??= Path.Combine(data, "prices.feed.json"));
builder.Services.AddSingleton<PriceFeed>();
builder.Services.AddHostedService<PriceTicker>();

var app = builder.Build();

// The browser page and lifeline.js, copied next to the program at build time.
var page = new PhysicalFileProvider(Path.Combine(AppContext.BaseDirectory, "page"));
app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = page });
app.UseStaticFiles(new StaticFileOptions { FileProvider = page });

app.MapLifelineHealth("/health");
var feed = app.Services.GetRequiredService<PriceFeed>();
app.MapLifelineSession("/prices", (session, ct) => PriceSessions.HandleAsync(session, feed, ct));

FeedLog.DataDirectory(app.Logger, data);
app.Run();
