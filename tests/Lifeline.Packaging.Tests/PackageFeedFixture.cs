using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Lifeline.Packaging.Tests;

/// <summary>
/// Packs every project under src/ once, into a temporary local feed, with a version no other run uses (so the
/// global packages folder can never hand back an older build of the same version). Removes the feed and what
/// restores extracted of that version when the tests end.
/// </summary>
public sealed class PackageFeedFixture : IAsyncLifetime
{
    /// <summary>The package of the <c>lifeline</c> tool.</summary>
    public const string ToolPackageId = "Lifeline.Cli";

    public static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(5);

    public string RepositoryRoot { get; } = FindRepositoryRoot();

    public string WorkDirectory { get; } = Directory.CreateTempSubdirectory("lifeline-packaging-").FullName;

    public string Feed => Path.Combine(WorkDirectory, "feed");

    /// <summary>The version of this run's packages: the repository's VersionPrefix with a unique suffix.</summary>
    public string Version { get; private set; } = "";

    /// <summary>The package ids packed, one per project under src/.</summary>
    public IReadOnlyList<string> PackageIds { get; private set; } = [];

    public async Task InitializeAsync()
    {
        var projects = Directory.GetDirectories(Path.Combine(RepositoryRoot, "src"))
            .Select(dir => Path.Combine(dir, Path.GetFileName(dir) + ".csproj"))
            .Where(File.Exists)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.NotEmpty(projects);

        // A solution of exactly the src/ projects: dotnet pack builds and packs them in one run. The build goes to
        // its own artifacts folder, so the repository's bin/ and obj/ (used by other tests meanwhile) stay untouched.
        var solution = new StringBuilder("<Solution>\n");
        foreach (var project in projects)
        {
            solution.Append($"  <Project Path=\"{project}\" />\n");
        }

        solution.Append("</Solution>\n");
        var solutionPath = Path.Combine(WorkDirectory, "packages.slnx");
        await File.WriteAllTextAsync(solutionPath, solution.ToString());

        var suffix = "ptest" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        await DotnetProcess.RunCheckedAsync(WorkDirectory, BuildTimeout,
            "pack", solutionPath, "-c", "Release", "-o", Feed, "--artifacts-path", Path.Combine(WorkDirectory, "pack-build"),
            $"-p:VersionSuffix={suffix}", "-p:ContinuousIntegrationBuild=true", "-nodeReuse:false");

        var tool = Directory.GetFiles(Feed, $"{ToolPackageId}.*.nupkg").Single();
        Version = Path.GetFileNameWithoutExtension(tool)[(ToolPackageId.Length + 1)..];
        Assert.EndsWith("-" + suffix, Version, StringComparison.Ordinal);
        PackageIds = [.. projects.Select(Path.GetFileNameWithoutExtension).Select(name => ReadPackageId(name!))];
    }

    public Task DisposeAsync()
    {
        // What restores and tool installs extracted of this run's version (nothing else is touched).
        var globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in PackageIds)
        {
            TryDelete(Path.Combine(globalPackages, id.ToLowerInvariant(), Version));
        }

        TryDelete(WorkDirectory);
        return Task.CompletedTask;
    }

    /// <summary>The path of a package of this run in the feed.</summary>
    public string PackagePath(string id, string extension = "nupkg") => Path.Combine(Feed, $"{id}.{Version}.{extension}");

    /// <summary>A file from a package of this run, as text.</summary>
    public string ReadPackageFile(string id, string entry)
    {
        using var zip = ZipFile.OpenRead(PackagePath(id));
        using var reader = new StreamReader((zip.GetEntry(entry) ?? throw new FileNotFoundException($"{entry} not in {id}")).Open());
        return reader.ReadToEnd();
    }

    private string ReadPackageId(string projectName)
    {
        // Every package is named after its project (Lifeline.Cli included): the feed must hold exactly that name.
        Assert.True(File.Exists(PackagePath(projectName)), $"no package {projectName} {Version} in the feed: {string.Join(", ", Directory.GetFiles(Feed).Select(Path.GetFileName))}");
        return projectName;
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
            // Left for the OS to clean (it is under the temp folder or a version nobody uses).
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    internal static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Lifeline.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Lifeline.slnx not found above " + AppContext.BaseDirectory);
    }
}

[CollectionDefinition(Name)]
public sealed class PackageFeedCollection : ICollectionFixture<PackageFeedFixture>
{
    public const string Name = "package feed";
}
