using System.Buffers;
using Lifeline.Session;
using Lifeline.Session.Store;
using Microsoft.Extensions.Time.Testing;

namespace Lifeline.Tests.Session;

internal static class Snapshots
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    public static SessionSnapshot Create(ResumeToken? token = null, DateTimeOffset? expiresAt = null, string? userId = "alice", int payloadBytes = 3)
    {
        var t = token ?? ResumeToken.Create();
        return new SessionSnapshot
        {
            Id = t.DeriveSessionId(),
            TokenHash = t.ComputeHash(),
            UserId = userId,
            CreatedAt = Start,
            ExpiresAt = expiresAt ?? Start.AddMinutes(2),
            NextOutboundSequence = 13,
            OutboundAcknowledged = 10,
            Unacknowledged =
            [
                new SessionMessage(11, true, "héllo"u8.ToArray()),
                new SessionMessage(12, false, new byte[payloadBytes]),
            ],
            LastInboundDelivered = 7,
            Groups = ["room-1", "ünicode"],
            State = new Dictionary<string, string> { ["count"] = "42", ["empty"] = "" },
        };
    }

    public static byte[] Serialize(SessionSnapshot snapshot)
    {
        var writer = new ArrayBufferWriter<byte>();
        SessionSnapshotSerializer.Write(writer, snapshot);
        return writer.WrittenSpan.ToArray();
    }

    public static void AssertSame(SessionSnapshot expected, SessionSnapshot actual)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.TokenHash, actual.TokenHash);
        Assert.Equal(expected.UserId, actual.UserId);
        Assert.Equal(expected.CreatedAt, actual.CreatedAt);
        Assert.Equal(expected.ExpiresAt, actual.ExpiresAt);
        Assert.Equal(expected.NextOutboundSequence, actual.NextOutboundSequence);
        Assert.Equal(expected.OutboundAcknowledged, actual.OutboundAcknowledged);
        Assert.Equal(expected.LastInboundDelivered, actual.LastInboundDelivered);
        Assert.Equal(expected.Unacknowledged.Select(m => (m.Sequence, m.IsText, Convert.ToHexString(m.Payload.Span))),
            actual.Unacknowledged.Select(m => (m.Sequence, m.IsText, Convert.ToHexString(m.Payload.Span))));
        Assert.Equal(expected.Groups, actual.Groups);
        Assert.Equal(expected.State.OrderBy(p => p.Key, StringComparer.Ordinal), actual.State.OrderBy(p => p.Key, StringComparer.Ordinal));
    }
}

public class SessionSnapshotSerializerTests
{
    [Fact]
    public void WriteThenTryRead_EveryField_RoundTrips()
    {
        var snapshot = Snapshots.Create();

        Assert.True(SessionSnapshotSerializer.TryRead(Snapshots.Serialize(snapshot), out var read, out var error), error);

        Snapshots.AssertSame(snapshot, read!);
    }

    [Fact]
    public void WriteThenTryRead_AnonymousEmptySession_RoundTrips()
    {
        var token = ResumeToken.Create();
        var snapshot = new SessionSnapshot { Id = token.DeriveSessionId(), TokenHash = token.ComputeHash(), ExpiresAt = Snapshots.Start };

        Assert.True(SessionSnapshotSerializer.TryRead(Snapshots.Serialize(snapshot), out var read, out _));

        Snapshots.AssertSame(snapshot, read!);
        Assert.Null(read!.UserId);
    }

    [Fact]
    public void TryRead_EveryTruncation_ReturnsFalseWithoutThrowing()
    {
        var bytes = Snapshots.Serialize(Snapshots.Create());

        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.False(SessionSnapshotSerializer.TryRead(bytes.AsSpan(0, length), out var snapshot, out var error));
            Assert.Null(snapshot);
            Assert.NotNull(error);
        }
    }

    [Fact]
    public void TryRead_TrailingByte_ReturnsFalse()
    {
        byte[] bytes = [.. Snapshots.Serialize(Snapshots.Create()), 0];

        Assert.False(SessionSnapshotSerializer.TryRead(bytes, out _, out var error));
        Assert.Equal("trailing bytes", error);
    }

    [Fact]
    public void TryRead_UnknownVersion_ReturnsFalse()
    {
        var bytes = Snapshots.Serialize(Snapshots.Create());
        bytes[0] = 99;

        Assert.False(SessionSnapshotSerializer.TryRead(bytes, out _, out var error));
        Assert.Contains("version", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryRead_EverySingleByteFlipped_NeverThrows()
    {
        var bytes = Snapshots.Serialize(Snapshots.Create());
        for (var i = 0; i < bytes.Length; i++)
        {
            var copy = (byte[])bytes.Clone();
            copy[i] ^= 0xFF;
            _ = SessionSnapshotSerializer.TryRead(copy, out _, out _);
        }
    }

    [Fact]
    public void Write_CursorsDisagreeWithMessages_ThrowsArgumentException()
    {
        var bad = new SessionSnapshot
        {
            Id = ResumeToken.Create().DeriveSessionId(),
            TokenHash = default,
            ExpiresAt = Snapshots.Start,
            NextOutboundSequence = 5,
            OutboundAcknowledged = 1,
        };

        Assert.Throws<ArgumentException>(() => Snapshots.Serialize(bad));
    }

    [Fact]
    public void AcceptsResume_RightTokenAndUser_TrueOtherwiseFalse()
    {
        var token = ResumeToken.Create();
        var bound = Snapshots.Create(token, userId: "alice");
        var anonymous = Snapshots.Create(token, userId: null);

        Assert.True(bound.AcceptsResume(token, "alice"));
        Assert.False(bound.AcceptsResume(token, "bob"));
        Assert.False(bound.AcceptsResume(token, null));
        Assert.False(bound.AcceptsResume(ResumeToken.Create(), "alice"));
        Assert.True(anonymous.AcceptsResume(token, "anyone"));
    }
}

public class SessionStateBagTests
{
    [Fact]
    public void TrySet_WithinBounds_StoresAndCountsUtf8Bytes()
    {
        var bag = new SessionStateBag(maxEntries: 4, maxBytes: 100);

        Assert.True(bag.TrySet("k", "é"));

        Assert.True(bag.TryGetValue("k", out var value));
        Assert.Equal("é", value);
        Assert.Equal(3, bag.Bytes);
    }

    [Fact]
    public void TrySet_OverTheEntryBound_ReturnsFalseAndKeepsTheBag()
    {
        var bag = new SessionStateBag(maxEntries: 1);
        bag.Set("a", "1");

        Assert.False(bag.TrySet("b", "2"));
        Assert.True(bag.TrySet("a", "3")); // replacing is not a new entry
        Assert.Equal(1, bag.Count);
    }

    [Fact]
    public void TrySet_OverTheByteBound_ReturnsFalse()
    {
        var bag = new SessionStateBag(maxBytes: 10);
        bag.Set("a", "123456789");

        Assert.False(bag.TrySet("a", "1234567890"));
        Assert.Equal("123456789", bag.ToDictionary()["a"]);
        Assert.True(bag.Remove("a"));
        Assert.Equal(0, bag.Bytes);
    }

    [Fact]
    public void Set_DoesNotFit_ThrowsSessionStateFullException()
    {
        var bag = new SessionStateBag(maxEntries: 1);
        bag.Set("a", "1");

        Assert.Throws<SessionStateFullException>(() => bag.Set("b", "2"));
    }
}

public class InMemorySessionStoreTests
{
    private static (InMemorySessionStore Store, FakeTimeProvider Time) Create(int maxSessions = 100, long maxBytes = 1_000_000)
    {
        var time = new FakeTimeProvider(Snapshots.Start);
        return (new InMemorySessionStore(new InMemorySessionStoreOptions { MaxSessions = maxSessions, MaxBytes = maxBytes }, time), time);
    }

    [Fact]
    public async Task SaveAsync_ThenTryLoadAsync_ReturnsTheSnapshot()
    {
        var (store, _) = Create();
        var snapshot = Snapshots.Create();

        await store.SaveAsync(snapshot);

        Assert.Same(snapshot, await store.TryLoadAsync(snapshot.Id));
        Assert.Null(await store.TryLoadAsync(ResumeToken.Create().DeriveSessionId()));
    }

    [Fact]
    public async Task TryLoadAsync_AfterExpiry_ReturnsNullAndForgetsIt()
    {
        var (store, time) = Create();
        var snapshot = Snapshots.Create(expiresAt: Snapshots.Start.AddMinutes(2));
        await store.SaveAsync(snapshot);

        time.Advance(TimeSpan.FromMinutes(2) - TimeSpan.FromMilliseconds(1));
        Assert.NotNull(await store.TryLoadAsync(snapshot.Id));
        time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Null(await store.TryLoadAsync(snapshot.Id));
        Assert.Equal(0, store.Count);
        Assert.Equal(0, store.Bytes);
    }

    [Fact]
    public async Task TryTakeAsync_Twice_OnlyTheFirstGetsTheSession()
    {
        var (store, _) = Create();
        var snapshot = Snapshots.Create();
        await store.SaveAsync(snapshot);

        Assert.Same(snapshot, await store.TryTakeAsync(snapshot.Id));
        Assert.Null(await store.TryTakeAsync(snapshot.Id));
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public async Task SaveAsync_OverMaxSessions_ThrowsSessionStoreFullException()
    {
        var (store, _) = Create(maxSessions: 1);
        var first = Snapshots.Create();
        await store.SaveAsync(first);

        await Assert.ThrowsAsync<SessionStoreFullException>(() => store.SaveAsync(Snapshots.Create()).AsTask());
        await store.SaveAsync(first); // replacing the same session still fits
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public async Task SaveAsync_OverMaxBytes_Throws()
    {
        var (store, _) = Create(maxBytes: 2_000);

        await Assert.ThrowsAsync<SessionStoreFullException>(() => store.SaveAsync(Snapshots.Create(payloadBytes: 5_000)).AsTask());
        Assert.Equal(0, store.Bytes);
    }

    [Fact]
    public async Task SaveAsync_FullOfExpiredSessions_PurgesThemToMakeRoom()
    {
        var (store, time) = Create(maxSessions: 1);
        await store.SaveAsync(Snapshots.Create(expiresAt: Snapshots.Start.AddSeconds(1)));
        time.Advance(TimeSpan.FromSeconds(1));

        var fresh = Snapshots.Create(expiresAt: Snapshots.Start.AddMinutes(5));
        await store.SaveAsync(fresh);

        Assert.Same(fresh, await store.TryLoadAsync(fresh.Id));
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public async Task RemoveAsync_Present_RemovesAndReportsTrue()
    {
        var (store, _) = Create();
        var snapshot = Snapshots.Create();
        await store.SaveAsync(snapshot);

        Assert.True(await store.RemoveAsync(snapshot.Id));
        Assert.False(await store.RemoveAsync(snapshot.Id));
        Assert.Equal(0, store.Bytes);
    }

    [Fact]
    public async Task PurgeExpired_RemovesOnlyExpired()
    {
        var (store, time) = Create();
        await store.SaveAsync(Snapshots.Create(expiresAt: Snapshots.Start.AddSeconds(1)));
        await store.SaveAsync(Snapshots.Create(expiresAt: Snapshots.Start.AddSeconds(10)));
        time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(1, store.PurgeExpired());
        Assert.Equal(1, store.Count);
        Assert.Single(store.GetAll());
    }
}

public sealed class SessionSnapshotFileTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "lifeline-session-tests-" + Guid.NewGuid().ToString("N"));

    private string FilePath => Path.Combine(_directory, "sessions.bin");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static (InMemorySessionStore Store, FakeTimeProvider Time) Create(FakeTimeProvider? time = null)
    {
        time ??= new FakeTimeProvider(Snapshots.Start);
        return (new InMemorySessionStore(new InMemorySessionStoreOptions { MaxFileAge = TimeSpan.FromMinutes(10) }, time), time);
    }

    [Fact]
    public async Task SaveToFileAsync_ThenLoadFromFileAsync_RestoresEverySessionAndConsumesTheFile()
    {
        var (draining, time) = Create();
        var first = Snapshots.Create();
        var second = Snapshots.Create(userId: null);
        await draining.SaveAsync(first);
        await draining.SaveAsync(second);

        Assert.Equal(2, await draining.SaveToFileAsync(FilePath));
        time.Advance(TimeSpan.FromSeconds(5));
        var (restarted, _) = Create(time);
        var result = await restarted.LoadFromFileAsync(FilePath);

        Assert.Equal(SessionSnapshotFileStatus.Loaded, result.Status);
        Snapshots.AssertSame(first, (await restarted.TryLoadAsync(first.Id))!);
        Snapshots.AssertSame(second, (await restarted.TryLoadAsync(second.Id))!);
        Assert.False(File.Exists(FilePath));
    }

    [Fact]
    public async Task WriteAsync_OverAnExistingFile_ReplacesItAndLeavesNoTemporaryFile()
    {
        var time = new FakeTimeProvider(Snapshots.Start);
        await SessionSnapshotFile.WriteAsync(FilePath, [Snapshots.Create(), Snapshots.Create()], time);
        var kept = Snapshots.Create();

        await SessionSnapshotFile.WriteAsync(FilePath, [kept], time);

        Assert.Equal([Path.GetFileName(FilePath)], Directory.GetFiles(_directory).Select(Path.GetFileName));
        var result = await SessionSnapshotFile.ReadAsync(FilePath, time, TimeSpan.FromMinutes(1));
        Assert.Equal(kept.Id, Assert.Single(result.Sessions).Id);
    }

    [Fact]
    public async Task LoadFromFileAsync_NoFile_ReportsMissing()
    {
        var (store, _) = Create();

        var result = await store.LoadFromFileAsync(FilePath);

        Assert.Equal(SessionSnapshotFileStatus.Missing, result.Status);
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public async Task LoadFromFileAsync_OneByteDamaged_ReportsCorruptLoadsNothingAndDoesNotThrow()
    {
        var (store, time) = Create();
        await SessionSnapshotFile.WriteAsync(FilePath, [Snapshots.Create()], time);
        var bytes = await File.ReadAllBytesAsync(FilePath);
        bytes[bytes.Length / 2] ^= 0x01;
        await File.WriteAllBytesAsync(FilePath, bytes);

        var result = await store.LoadFromFileAsync(FilePath);

        Assert.Equal(SessionSnapshotFileStatus.Corrupt, result.Status);
        Assert.Contains("checksum", result.Detail, StringComparison.Ordinal);
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public async Task ReadAsync_TruncatedFile_ReportsCorrupt()
    {
        var time = new FakeTimeProvider(Snapshots.Start);
        await SessionSnapshotFile.WriteAsync(FilePath, [Snapshots.Create()], time);
        var bytes = await File.ReadAllBytesAsync(FilePath);
        await File.WriteAllBytesAsync(FilePath, bytes[..^10]);

        var result = await SessionSnapshotFile.ReadAsync(FilePath, time, TimeSpan.FromMinutes(1));

        Assert.Equal(SessionSnapshotFileStatus.Corrupt, result.Status);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"sessions\":[]}")]
    [InlineData("LLSF")]
    public async Task ReadAsync_ForeignContent_ReportsCorrupt(string content)
    {
        Directory.CreateDirectory(_directory);
        await File.WriteAllTextAsync(FilePath, content);

        var result = await SessionSnapshotFile.ReadAsync(FilePath, TimeProvider.System, TimeSpan.FromMinutes(1));

        Assert.Equal(SessionSnapshotFileStatus.Corrupt, result.Status);
        Assert.Empty(result.Sessions);
    }

    [Fact]
    public async Task LoadFromFileAsync_WrittenLongerAgoThanMaxFileAge_ReportsStale()
    {
        var (store, time) = Create();
        await SessionSnapshotFile.WriteAsync(FilePath, [Snapshots.Create(expiresAt: Snapshots.Start.AddDays(1))], time);
        time.Advance(TimeSpan.FromMinutes(11));

        var result = await store.LoadFromFileAsync(FilePath);

        Assert.Equal(SessionSnapshotFileStatus.Stale, result.Status);
        Assert.Equal(0, store.Count);
        Assert.False(File.Exists(FilePath));
    }

    [Fact]
    public async Task ReadAsync_SomeSessionsExpiredWhileDown_SkipsAndCountsThem()
    {
        var time = new FakeTimeProvider(Snapshots.Start);
        var lasting = Snapshots.Create(expiresAt: Snapshots.Start.AddMinutes(2));
        await SessionSnapshotFile.WriteAsync(FilePath, [Snapshots.Create(expiresAt: Snapshots.Start.AddSeconds(30)), lasting], time);
        time.Advance(TimeSpan.FromMinutes(1));

        var result = await SessionSnapshotFile.ReadAsync(FilePath, time, TimeSpan.FromMinutes(10));

        Assert.Equal(SessionSnapshotFileStatus.Loaded, result.Status);
        Assert.Equal(1, result.ExpiredSkipped);
        Assert.Equal(lasting.Id, Assert.Single(result.Sessions).Id);
    }
}
