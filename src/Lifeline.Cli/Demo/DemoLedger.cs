using System.Buffers.Binary;
using System.Collections.Concurrent;
using Lifeline.AspNetCore;

namespace Lifeline.Cli.Demo;

/// <summary>The three kinds of client the demo runs side by side.</summary>
internal enum ClientKind
{
    /// <summary>A <c>LifelineClient</c> in session mode (lifeline.v1).</summary>
    Session,

    /// <summary>A <c>LifelineClient</c> without sessions.</summary>
    Plain,

    /// <summary>A bare <c>ClientWebSocket</c> with a fixed-delay reconnect loop and no keep-alive timeout.</summary>
    Naive,
}

/// <summary>
/// One direction of one client's numbered stream: which incident each number was sent in and how many times it
/// arrived. Numbers start at 1. A number recorded as sent twice keeps its first incident (a session resends the
/// same number after a restart).
/// </summary>
/// <remarks>Thread-safe: every member takes the one lock.</remarks>
internal sealed class SequenceLog
{
    private readonly Lock _lock = new();
    private readonly List<sbyte> _incidentOf = [];
    private readonly List<int> _receptions = [];
    private int _next;

    /// <summary>The next number for a sender that numbers from this log (the plain endpoint's stream).</summary>
    public int Next() => Interlocked.Increment(ref _next);

    public void RecordSent(int sequence, int incident)
    {
        lock (_lock)
        {
            while (_incidentOf.Count < sequence)
            {
                _incidentOf.Add(-1);
            }

            if (_incidentOf[sequence - 1] < 0)
            {
                _incidentOf[sequence - 1] = (sbyte)incident;
            }
        }
    }

    public void RecordReceived(int sequence)
    {
        if (sequence < 1)
        {
            return;
        }

        lock (_lock)
        {
            while (_receptions.Count < sequence)
            {
                _receptions.Add(0);
            }

            _receptions[sequence - 1]++;
        }
    }

    /// <summary>Whether every number sent so far arrived (at least once).</summary>
    public bool AllReceived
    {
        get
        {
            lock (_lock)
            {
                for (var i = 0; i < _incidentOf.Count; i++)
                {
                    if (_incidentOf[i] >= 0 && (i >= _receptions.Count || _receptions[i] == 0))
                    {
                        return false;
                    }
                }

                return true;
            }
        }
    }

    /// <summary>Adds this log's figures for each incident (by the incident a number was sent in) to <paramref name="into"/>.</summary>
    public void AddTo(MessageCounts[] into)
    {
        lock (_lock)
        {
            for (var i = 0; i < _incidentOf.Count; i++)
            {
                var incident = _incidentOf[i];
                if (incident < 0 || incident >= into.Length)
                {
                    continue;
                }

                var received = i < _receptions.Count ? _receptions[i] : 0;
                into[incident] = into[incident].Add(1, received > 0 ? 1 : 0, received == 0 ? 1 : 0, Math.Max(0, received - 1));
            }
        }
    }

    public static byte[] Encode(int sequence)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, sequence);
        return bytes;
    }

    public static int Decode(ReadOnlyMemory<byte> data) => data.Length == 4 ? BinaryPrimitives.ReadInt32BigEndian(data.Span) : -1;
}

/// <summary>Messages sent, received (distinct), lost and duplicated.</summary>
internal readonly record struct MessageCounts(long Sent, long Received, long Lost, long Duplicated)
{
    public MessageCounts Add(long sent, long received, long lost, long duplicated) =>
        new(Sent + sent, Received + received, Lost + lost, Duplicated + duplicated);

    public static MessageCounts operator +(MessageCounts a, MessageCounts b) =>
        a.Add(b.Sent, b.Received, b.Lost, b.Duplicated);

    public static MessageCounts Add(MessageCounts a, MessageCounts b) => a + b;
}

/// <summary>What happened to one client, as the client saw it.</summary>
internal enum ProbeEventKind
{
    /// <summary>The client noticed its connection was gone.</summary>
    Lost,

    /// <summary>The client is connected again.</summary>
    Back,

    /// <summary>A session client resumed its session.</summary>
    Resumed,

    /// <summary>A session client was told its session was lost.</summary>
    SessionLost,
}

internal readonly record struct ProbeEvent(ProbeEventKind Kind, double At);

/// <summary>
/// One client of the demo: its numbered streams both ways, whether it is connected, the events it saw, and (on the
/// server side, across host restarts) the connection or session that carries it now.
/// </summary>
internal sealed class DemoClientRecord(ClientKind kind, int index)
{
    private readonly Lock _lock = new();
    private readonly List<ProbeEvent> _events = [];
    private int _connected;

    public ClientKind Kind { get; } = kind;

    public int Index { get; } = index;

    public string Id { get; } = $"{kind.ToString().ToLowerInvariant()}-{index}";

    /// <summary>Client to server.</summary>
    public SequenceLog Up { get; } = new();

    /// <summary>Server to client.</summary>
    public SequenceLog Down { get; } = new();

    public bool IsConnected => Volatile.Read(ref _connected) != 0;

    /// <summary>The server's current plain connection for this client (null for session clients).</summary>
    public LifelineConnection? ServerConnection { get; set; }

    /// <summary>The server's session for this client (null for plain and naive clients).</summary>
    public LifelineSession? ServerSession { get; set; }

    public void Record(ProbeEventKind kind, double at)
    {
        lock (_lock)
        {
            if (kind == ProbeEventKind.Lost)
            {
                Volatile.Write(ref _connected, 0);
            }
            else if (kind == ProbeEventKind.Back)
            {
                Volatile.Write(ref _connected, 1);
            }

            _events.Add(new ProbeEvent(kind, at));
        }
    }

    public ProbeEvent[] Events()
    {
        lock (_lock)
        {
            return [.. _events];
        }
    }
}

/// <summary>Every client of the demo and the reconnect attempts per kind; shared by the clients and every server host.</summary>
internal sealed class DemoLedger
{
    private readonly ConcurrentDictionary<string, DemoClientRecord> _byId = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<double>[] _attempts = [new(), new(), new()];

    public DemoLedger(int perKind)
    {
        foreach (var kind in Enum.GetValues<ClientKind>())
        {
            for (var i = 1; i <= perKind; i++)
            {
                var record = new DemoClientRecord(kind, i);
                _byId[record.Id] = record;
            }
        }

        Clients = [.. _byId.Values.OrderBy(c => c.Kind).ThenBy(c => c.Index)];
    }

    public IReadOnlyList<DemoClientRecord> Clients { get; }

    public DemoClientRecord? Find(string? id) => id is null ? null : _byId.GetValueOrDefault(id);

    public IEnumerable<DemoClientRecord> OfKind(ClientKind kind) => Clients.Where(c => c.Kind == kind);

    /// <summary>A reconnect attempt (not the first connect) made at <paramref name="at"/> ms.</summary>
    public void RecordAttempt(ClientKind kind, double at) => _attempts[(int)kind].Enqueue(at);

    public double[] Attempts(ClientKind kind) => [.. _attempts[(int)kind].Order()];

    /// <summary>Attempts in the second before <paramref name="now"/> ms.</summary>
    public int AttemptsInLastSecond(ClientKind kind, double now) => _attempts[(int)kind].Count(at => at > now - 1000 && at <= now);
}
