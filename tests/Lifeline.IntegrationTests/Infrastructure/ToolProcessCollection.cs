namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>
/// Tests that run the built tool as child processes: one at a time among themselves, so that a two-core machine
/// is not asked to start a dozen .NET processes at once; they still run beside the other test classes.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ToolProcessCollection
{
    public const string Name = "Tool processes";
}
