using System.Text;
using System.Text.RegularExpressions;

namespace Lifeline.Packaging.Tests;

[Collection(PackageFeedCollection.Name)]
public sealed partial class ReadmeExampleTests(PackageFeedFixture feed)
{
    [Fact]
    public async Task PackageReadme_CsharpExample_CompilesAgainstThePackage()
    {
        // The README shipped inside each library package (the one NuGet renders), not the file in src/.
        var libraries = feed.PackageIds.Where(id => id != PackageFeedFixture.ToolPackageId).ToList();
        var root = Path.Combine(feed.WorkDirectory, "readme-examples");
        var solution = new StringBuilder("<Solution>\n");
        foreach (var id in libraries)
        {
            var readme = feed.ReadPackageFile(id, "README.md");
            var blocks = CsharpBlock().Matches(readme).Select(m => m.Groups["code"].Value).ToList();
            Assert.True(blocks.Count > 0, $"the README of {id} has no ```csharp example");

            // A user's new project: console, or web for the ASP.NET Core package, with only this package added.
            var dir = Directory.CreateDirectory(Path.Combine(root, id)).FullName;
            var sdk = id.Contains("AspNetCore", StringComparison.Ordinal) ? "Microsoft.NET.Sdk.Web" : "Microsoft.NET.Sdk";
            await File.WriteAllTextAsync(Path.Combine(dir, $"{id}.Example.csproj"), $"""
                <Project Sdk="{sdk}">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                    <RestoreAdditionalProjectSources>{feed.Feed}</RestoreAdditionalProjectSources>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="{id}" Version="{feed.Version}" />
                  </ItemGroup>
                </Project>
                """);
            await File.WriteAllTextAsync(Path.Combine(dir, "Program.cs"), string.Join("\n", blocks));
            solution.Append($"  <Project Path=\"{id}/{id}.Example.csproj\" />\n");
        }

        solution.Append("</Solution>\n");
        await File.WriteAllTextAsync(Path.Combine(root, "examples.slnx"), solution.ToString());

        await DotnetProcess.RunCheckedAsync(root, PackageFeedFixture.BuildTimeout, "build", "examples.slnx", "-nodeReuse:false");
    }

    [GeneratedRegex(@"^```csharp\n(?<code>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CsharpBlock();
}
