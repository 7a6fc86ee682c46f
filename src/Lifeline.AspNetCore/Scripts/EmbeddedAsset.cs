using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Lifeline.AspNetCore.Scripts;

/// <summary>A file embedded in this assembly, served with a strong ETag and revalidating cache headers.</summary>
/// <remarks>Immutable and thread-safe: the bytes and the ETag are computed once.</remarks>
internal sealed class EmbeddedAsset
{
    /// <summary>Cache for a short while, then revalidate with the ETag (a cheap 304).</summary>
    public const string CacheControl = "public, max-age=300, must-revalidate";

    public static readonly EmbeddedAsset Script = Load("Lifeline.AspNetCore.Scripts.lifeline.js", "text/javascript; charset=utf-8");

    public static readonly EmbeddedAsset Declarations = Load("Lifeline.AspNetCore.Scripts.lifeline.d.ts", "application/typescript; charset=utf-8");

    private EmbeddedAsset(byte[] content, string contentType)
    {
        Content = content;
        ContentType = contentType;
        ETag = "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 16)) + "\"";
    }

    public byte[] Content { get; }

    public string ContentType { get; }

    public string ETag { get; }

    /// <summary>Writes the file, or 304 when the client's <c>If-None-Match</c> names this version.</summary>
    public Task WriteAsync(HttpContext context)
    {
        var response = context.Response;
        response.Headers.ETag = ETag;
        response.Headers.CacheControl = CacheControl;
        response.Headers.XContentTypeOptions = "nosniff";
        if (Matches(context.Request.Headers.IfNoneMatch))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        response.ContentType = ContentType;
        response.ContentLength = Content.Length;
        return HttpMethods.IsHead(context.Request.Method)
            ? Task.CompletedTask
            : response.Body.WriteAsync(Content, context.RequestAborted).AsTask();
    }

    private bool Matches(Microsoft.Extensions.Primitives.StringValues ifNoneMatch)
    {
        if (ifNoneMatch.Count == 0 || !EntityTagHeaderValue.TryParseList(ifNoneMatch, out var tags))
        {
            return false;
        }

        foreach (var tag in tags)
        {
            if (tag.Equals(EntityTagHeaderValue.Any) || tag.Tag.Equals(ETag, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static EmbeddedAsset Load(string name, string contentType)
    {
        using var stream = typeof(EmbeddedAsset).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The embedded resource {name} is missing from Lifeline.AspNetCore.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return new EmbeddedAsset(copy.ToArray(), contentType);
    }
}
