namespace Lifeline.Packaging.Tests;

/// <summary>Which projects the build treats as shipped code (analyzers, XML docs, public API, packing).</summary>
public sealed class BuildLayoutTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task IsSrcProject_CheckoutInsideAFolderNamedSrc_OnlyTheRepositorysSrcProjects()
    {
        // Before, any project whose path contained "/src/" counted: cloned under ~/src/, the tests and benchmarks got the
        // shipped-code analyzers with warnings as errors, and the build failed.
        var root = Path.Combine(Path.GetTempPath(), $"lifeline-layout-{Guid.NewGuid():N}", "src", "checkout");
        try
        {
            var repository = PackageFeedFixture.FindRepositoryRoot();
            Directory.CreateDirectory(root);
            foreach (var file in new[] { "Directory.Build.props", "Directory.Packages.props", "global.json", "BannedSymbols.txt" })
            {
                File.Copy(Path.Combine(repository, file), Path.Combine(root, file));
            }

            var expected = new Dictionary<string, string> { ["src/Shipped"] = "true", ["tests/Tests"] = "false", ["bench/Bench"] = "false" };
            foreach (var (folder, isSrc) in expected)
            {
                var directory = Path.Combine(root, folder);
                Directory.CreateDirectory(directory);
                var project = Path.Combine(directory, Path.GetFileName(folder) + ".csproj");
                await File.WriteAllTextAsync(project, "<Project Sdk=\"Microsoft.NET.Sdk\"></Project>\n");

                var output = await DotnetProcess.RunCheckedAsync(root, Bound, "msbuild", project, "-getProperty:IsSrcProject");

                Assert.True(string.Equals(output.Trim(), isSrc, StringComparison.OrdinalIgnoreCase), $"{folder}: IsSrcProject is '{output.Trim()}', expected {isSrc}");
            }
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(Path.GetDirectoryName(root)!)!, recursive: true);
        }
    }
}
