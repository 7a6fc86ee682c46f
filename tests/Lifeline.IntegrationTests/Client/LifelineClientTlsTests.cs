using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Lifeline.Client;
using Lifeline.IntegrationTests.Infrastructure;
using Lifeline.Reconnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lifeline.IntegrationTests.Client;

/// <summary>wss:// with a certificate the client accepts through ConfigureWebSocket, and Lifeline's keep-alive inside TLS.</summary>
public sealed class LifelineClientTlsTests
{
    internal static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A Lifeline echo endpoint at /ws over TLS with <paramref name="certificate"/>, on 127.0.0.1.</summary>
    internal static async Task<(WebApplication App, int Port)> StartTlsEchoAsync(X509Certificate2 certificate)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        builder.Services.AddLifeline();
        var app = builder.Build();
        app.MapLifeline("/ws", LifelineTestHost.EchoAsync);
        await app.StartAsync();
        return (app, new Uri(app.Urls.First()).Port);
    }

    [Fact]
    public async Task Wss_CertificateAcceptedByTheCallback_EchoesAndKeepAlivePingsAreAnswered()
    {
        using var certificate = SelfSigned();
        var (started, port) = await StartTlsEchoAsync(certificate);
        await using var app = started;

        var validated = 0;
        var options = new LifelineClientOptions
        {
            Uri = new Uri($"wss://127.0.0.1:{port}/ws"),
            ReconnectPolicy = NeverReconnectPolicy.Instance,
            KeepAliveInterval = TimeSpan.FromMilliseconds(300),
            KeepAliveTimeout = TimeSpan.FromSeconds(5),
            ConfigureWebSocket = socket => socket.RemoteCertificateValidationCallback = (_, presented, _, _) =>
            {
                Interlocked.Increment(ref validated);
                return presented?.GetCertHashString() == certificate.GetCertHashString();
            },
        };
        await using var client = new LifelineClient(options);
        await client.StartAsync().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.True(validated > 0);

        await client.SendTextAsync("over tls");
        Assert.Equal("over tls", (await Wait.ReadAsync(client.Messages)).Text);

        // Quiet: Lifeline pings every 300 ms of silence, inside TLS; each Pong must come back (a broken frame would
        // have the server close with 1002, an unanswered ping the client give up after 5 s).
        await Wait.UntilAsync(() => client.KeepAlivePingsAnswered >= 3, TimeSpan.FromSeconds(30), "three pings answered");
        Assert.Equal(LifelineClientState.Connected, client.State);
        await client.SendTextAsync("still up");
        Assert.Equal("still up", (await Wait.ReadAsync(client.Messages)).Text);
    }
}
