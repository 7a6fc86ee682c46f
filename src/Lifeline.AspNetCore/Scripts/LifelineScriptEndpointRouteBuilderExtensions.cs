using Lifeline.AspNetCore.Scripts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Serves the browser client (<c>lifeline.js</c>) from the server package.</summary>
public static class LifelineScriptEndpointRouteBuilderExtensions
{
    /// <summary>The path <see cref="MapLifelineScript"/> uses when none is given.</summary>
    public const string DefaultScriptPath = "/lifeline/lifeline.js";

    /// <summary>
    /// Serves the browser client, the ES module <c>lifeline.js</c> embedded in this package (the same bytes as
    /// <c>src/lifeline-js/lifeline.js</c> of the release), at <paramref name="pattern"/> (default
    /// <c>/lifeline/lifeline.js</c>) as <c>text/javascript</c>, and its TypeScript declarations beside it (the
    /// pattern with <c>.js</c> replaced by <c>.d.ts</c>). Responses carry a strong ETag (a 304 answers a matching
    /// <c>If-None-Match</c>) and <c>Cache-Control: public, max-age=300, must-revalidate</c>. GET and HEAD.
    /// </summary>
    /// <returns>A builder for both endpoints, for conventions such as <c>RequireAuthorization</c> or <c>RequireCors</c>.</returns>
    public static IEndpointConventionBuilder MapLifelineScript(this IEndpointRouteBuilder endpoints, string pattern = DefaultScriptPath)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrWhiteSpace(pattern);
        if (!pattern.EndsWith(".js", StringComparison.Ordinal))
        {
            throw new ArgumentException($"The script path must end with .js (it is served as an ES module); got '{pattern}'.", nameof(pattern));
        }

        string[] methods = [HttpMethods.Get, HttpMethods.Head];
        var script = endpoints.MapMethods(pattern, methods, EmbeddedAsset.Script.WriteAsync).WithDisplayName($"Lifeline script {pattern}");
        var declarationsPath = pattern[..^".js".Length] + ".d.ts";
        var declarations = endpoints.MapMethods(declarationsPath, methods, EmbeddedAsset.Declarations.WriteAsync).WithDisplayName($"Lifeline script declarations {declarationsPath}");
        return new CompositeEndpointConventionBuilder(script, declarations);
    }

    private sealed class CompositeEndpointConventionBuilder(params IEndpointConventionBuilder[] builders) : IEndpointConventionBuilder
    {
        public void Add(Action<EndpointBuilder> convention)
        {
            foreach (var builder in builders)
            {
                builder.Add(convention);
            }
        }

        public void Finally(Action<EndpointBuilder> finallyConvention)
        {
            foreach (var builder in builders)
            {
                builder.Finally(finallyConvention);
            }
        }
    }
}
