namespace Lifeline.AspNetCore.Dashboard;

/// <summary>The dashboard page, <c>dashboard.html</c> embedded in this assembly: inline CSS and script, no external resources.</summary>
internal static class DashboardPage
{
    public static readonly string Html = Load();

    private static string Load()
    {
        const string name = "Lifeline.AspNetCore.Dashboard.dashboard.html";
        using var stream = typeof(DashboardPage).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The embedded resource {name} is missing from Lifeline.AspNetCore.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
