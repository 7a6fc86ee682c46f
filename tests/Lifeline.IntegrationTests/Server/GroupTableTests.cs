using Lifeline.AspNetCore;

namespace Lifeline.IntegrationTests.Server;

public sealed class GroupTableTests
{
    [Fact]
    public void Remove_TheLastMember_RemovesTheGroup()
    {
        var groups = new GroupTable<string, string>();
        for (var i = 0; i < 1_000; i++)
        {
            groups.Add($"user-{i}", "a", "member a");
            groups.Remove($"user-{i}", "a", "member a");
        }

        // Before, every name ever used stayed in the table with no members.
        Assert.Equal(0, groups.Count);
        Assert.Empty(groups.Members("user-1"));
    }

    [Fact]
    public void Remove_OneOfTwoMembers_KeepsTheGroupWithTheOther()
    {
        var groups = new GroupTable<string, string>();
        groups.Add("room", "a", "member a");
        groups.Add("room", "b", "member b");

        groups.Remove("room", "a", "member a");

        Assert.Equal(["member b"], groups.Members("room"));
    }

    [Fact]
    public void Remove_AKeyThatHoldsAnotherMemberNow_LeavesThatMember()
    {
        var groups = new GroupTable<string, string>();
        groups.Add("room", "a", "old copy");
        groups.Add("room", "a", "new copy"); // a session restored under the same id

        groups.Remove("room", "a", "old copy");

        Assert.Equal(["new copy"], groups.Members("room"));
    }

    [Fact]
    public async Task JoinsAndLeavesAtOnce_NoJoinIsLostInAGroupBeingRemoved()
    {
        var groups = new GroupTable<int, int>();
        const int Rounds = 20_000;

        // One thread keeps joining and leaving; the other joins for good, once per round, into the same groups.
        var churn = Task.Run(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                groups.Add($"g{i % 8}", -1, -1);
                groups.Remove($"g{i % 8}", -1, -1);
            }
        });
        var stay = Task.Run(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                groups.Add($"g{i % 8}", i, i);
            }
        });
        await Task.WhenAll(churn, stay);

        Assert.Equal(Rounds, Enumerable.Range(0, 8).Sum(g => groups.Members($"g{g}").Length));
    }
}
