namespace Lifeline.IntegrationTests.Dashboard;

/// <summary>Files of the repository the tests run from (found by walking up to Lifeline.slnx).</summary>
internal static class RepositoryFiles
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    private static string FindRoot()
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
