using Lifeline.Client;
using Lifeline.Reconnect;

namespace Lifeline.IntegrationTests.Client;

internal static class ClientTestOptions
{
    /// <summary>Options with short, real delays so that reconnect tests finish in seconds.</summary>
    public static LifelineClientOptions Fast(Uri uri, Action<ReconnectPolicyOptions>? policy = null)
    {
        var policyOptions = new ReconnectPolicyOptions
        {
            BaseDelay = TimeSpan.FromMilliseconds(100),
            MaxDelay = TimeSpan.FromMilliseconds(500),
        };
        policy?.Invoke(policyOptions);
        return new LifelineClientOptions
        {
            Uri = uri,
            ReconnectPolicy = new DefaultReconnectPolicy(policyOptions),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            CloseTimeout = TimeSpan.FromSeconds(2),
        };
    }
}
