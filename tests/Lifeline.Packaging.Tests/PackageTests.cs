using System.IO.Compression;
using System.Xml.Linq;

namespace Lifeline.Packaging.Tests;

[Collection(PackageFeedCollection.Name)]
public sealed class PackageTests(PackageFeedFixture feed)
{
    [Fact]
    public void Pack_SrcProjects_OnePackagePerProjectWithTheSharedVersion()
    {
        Assert.Contains("Lifeline", feed.PackageIds);
        Assert.Contains("Lifeline.AspNetCore", feed.PackageIds);
        Assert.Contains("Lifeline.FaultProxy", feed.PackageIds);
        Assert.Contains(PackageFeedFixture.ToolPackageId, feed.PackageIds);

        // Nothing else: tests, bench and samples are not packable; every package has its symbols beside it.
        var expected = feed.PackageIds.SelectMany(id => new[] { $"{id}.{feed.Version}.nupkg", $"{id}.{feed.Version}.snupkg" }).Order(StringComparer.Ordinal);
        Assert.Equal(expected, Directory.GetFiles(feed.Feed).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Pack_EveryPackage_HasReadmeLicenseRepositoryAndDescription()
    {
        foreach (var id in feed.PackageIds)
        {
            var metadata = Nuspec(id);
            Assert.Equal(id, Value(metadata, "id"));
            Assert.Equal(feed.Version, Value(metadata, "version"));
            Assert.Equal("Lifeline contributors", Value(metadata, "authors"));
            var license = Element(metadata, "license");
            Assert.Equal("expression", license.Attribute("type")?.Value);
            Assert.Equal("MIT", license.Value);
            Assert.Equal("git", Element(metadata, "repository").Attribute("type")?.Value);
            Assert.False(string.IsNullOrWhiteSpace(Value(metadata, "description")), $"{id}: no description");

            Assert.Equal("README.md", Value(metadata, "readme"));
            var readme = feed.ReadPackageFile(id, "README.md");
            Assert.StartsWith("# ", readme, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Pack_Libraries_CarryXmlDocsAndPortablePdbsInTheSymbolPackage()
    {
        foreach (var id in feed.PackageIds.Where(id => id != PackageFeedFixture.ToolPackageId))
        {
            var entries = Entries(feed.PackagePath(id));
            Assert.Contains($"lib/net10.0/{id}.dll", entries);
            Assert.Contains($"lib/net10.0/{id}.xml", entries);
            Assert.Contains($"lib/net10.0/{id}.pdb", Entries(feed.PackagePath(id, "snupkg")));
        }
    }

    [Fact]
    public void Pack_AspNetCore_DependsOnExactlyTheLifelineItWasBuiltWith()
    {
        // Lifeline.AspNetCore calls Lifeline's internals: a later Lifeline may change them, so ">= version" (NuGet's
        // default for a project reference) would let a restore pair it with one that fails at run time.
        Assert.Equal($"[{feed.Version}]", LifelineDependency("Lifeline.AspNetCore"));

        // A package that uses only the public API takes any later Lifeline.
        Assert.Equal(feed.Version, LifelineDependency("Lifeline.Redis"));
    }

    [Fact]
    public void Pack_Cli_IsADotnetToolNamedLifeline()
    {
        var metadata = Nuspec(PackageFeedFixture.ToolPackageId);
        var packageType = Assert.Single(Element(metadata, "packageTypes").Elements());
        Assert.Equal("DotnetTool", packageType.Attribute("name")?.Value);

        var settings = XDocument.Parse(feed.ReadPackageFile(PackageFeedFixture.ToolPackageId, "tools/net10.0/any/DotnetToolSettings.xml"));
        var command = Assert.Single(settings.Descendants("Command"));
        Assert.Equal("lifeline", command.Attribute("Name")?.Value);
        Assert.Equal("Lifeline.Cli.dll", command.Attribute("EntryPoint")?.Value);
    }

    private XElement Nuspec(string id) =>
        XDocument.Parse(feed.ReadPackageFile(id, id + ".nuspec")).Root!.Elements().Single(e => e.Name.LocalName == "metadata");

    private string? LifelineDependency(string id) =>
        Element(Nuspec(id), "dependencies").Descendants().Single(e => e.Name.LocalName == "dependency" && e.Attribute("id")?.Value == "Lifeline").Attribute("version")?.Value;

    private static XElement Element(XElement metadata, string name) => metadata.Elements().Single(e => e.Name.LocalName == name);

    private static string Value(XElement metadata, string name) => Element(metadata, name).Value;

    private static List<string> Entries(string package)
    {
        using var zip = ZipFile.OpenRead(package);
        return [.. zip.Entries.Select(e => e.FullName)];
    }
}
