namespace Lifeline.IntegrationTests.Infrastructure;

/// <summary>Checks on option setters shared by the client's and the server's bad-input tests.</summary>
internal static class OptionAssert
{
    /// <summary>
    /// Each setter, given a duration longer than a timer waits (about 49.7 days), throws a message that names the
    /// setting and the limit.
    /// </summary>
    public static void RejectLongerThanATimer(params (string Name, Action<TimeSpan> Set)[] settings)
    {
        var fiftyDays = TimeSpan.FromDays(50);
        foreach (var (name, set) in settings)
        {
            var message = Assert.Throws<ArgumentOutOfRangeException>(() => set(fiftyDays)).Message;
            Assert.Contains(name, message, StringComparison.Ordinal);
            Assert.Contains("49 days", message, StringComparison.Ordinal);
        }
    }
}
