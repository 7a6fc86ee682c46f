using System.Net;
using Lifeline.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;

namespace Lifeline.IntegrationTests.Dashboard;

/// <summary><c>MapLifelineScript</c> serves the browser client from the server package, byte for byte.</summary>
public sealed class ScriptEndpointTests
{
    [Fact]
    public async Task MapLifelineScript_DefaultPath_ServesTheExactFileAsJavaScript()
    {
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineScript());
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.Port}"), Timeout = TimeSpan.FromSeconds(30) };

        using var response = await http.GetAsync("/lifeline/lifeline.js");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(await File.ReadAllBytesAsync(RepositoryFiles.PathOf("src/lifeline-js/lifeline.js")), await response.Content.ReadAsByteArrayAsync());
        Assert.NotNull(response.Headers.ETag);
        Assert.False(response.Headers.ETag!.IsWeak);
        Assert.Contains("max-age=", response.Headers.CacheControl?.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MapLifelineScript_IfNoneMatchWithTheETag_Answers304WithoutBody()
    {
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineScript());
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.Port}"), Timeout = TimeSpan.FromSeconds(30) };
        using var first = await http.GetAsync("/lifeline/lifeline.js");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/lifeline/lifeline.js");
        request.Headers.IfNoneMatch.Add(first.Headers.ETag!);
        using var second = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);
        Assert.Empty(await second.Content.ReadAsByteArrayAsync());
        Assert.Equal(first.Headers.ETag, second.Headers.ETag);
    }

    [Fact]
    public async Task MapLifelineScript_CustomPath_ServesTheDeclarationsBesideIt()
    {
        await using var host = await LifelineTestHost.StartAsync(map: app => app.MapLifelineScript("/static/lifeline.js"));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.Port}"), Timeout = TimeSpan.FromSeconds(30) };

        using var script = await http.GetAsync("/static/lifeline.js");
        using var declarations = await http.GetAsync("/static/lifeline.d.ts");
        using var oldPath = await http.GetAsync("/lifeline/lifeline.js");

        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Equal(await File.ReadAllBytesAsync(RepositoryFiles.PathOf("src/lifeline-js/lifeline.d.ts")), await declarations.Content.ReadAsByteArrayAsync());
        Assert.Equal(HttpStatusCode.NotFound, oldPath.StatusCode);
    }

    [Fact]
    public void MapLifelineScript_PathNotEndingInJs_IsRefused()
    {
        var builder = WebApplication.CreateSlimBuilder();
        var app = builder.Build();
        Assert.Throws<ArgumentException>(() => app.MapLifelineScript("/lifeline/client"));
    }
}
