namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>
/// Tests that load the machine (a thousand sockets) or whose assertion includes a time bound (keep-alive detection)
/// run alone, after the parallel tests, so neither disturbs the other on a two-core machine.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "Serial";
}
