using Lifeline.AspNetCore;

namespace LivePrices.Server;

/// <summary>One connection: subscribe and unsubscribe commands in, ticks out (sent by <see cref="PriceTicker"/>).</summary>
internal static class PriceSubscriptions
{
    public const string Group = "prices";

    public static async Task HandleAsync(LifelineConnection connection, CancellationToken cancellationToken)
    {
        // In plain mode a new socket starts with no groups: clients subscribe again after every reconnect.
        await foreach (var message in connection.Messages.ReadAllAsync(CancellationToken.None))
        {
            switch (message.Text.Trim())
            {
                case "subscribe prices":
                    connection.JoinGroup(Group);
                    await connection.SendTextAsync("subscribed prices", cancellationToken);
                    break;
                case "unsubscribe prices":
                    connection.LeaveGroup(Group);
                    await connection.SendTextAsync("unsubscribed prices", cancellationToken);
                    break;
                default:
                    await connection.SendTextAsync("error unknown command (try: subscribe prices)", cancellationToken);
                    break;
            }
        }
    }
}
