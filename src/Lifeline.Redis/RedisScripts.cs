namespace Lifeline.Redis;

/// <summary>
/// The Lua scripts. Every script takes the five keys of one session in the order of <see cref="RedisKeys.All"/>:
/// KEYS[1] snapshot, KEYS[2] epoch, KEYS[3] owner, KEYS[4] log, KEYS[5] cursor. Fenced scripts take the caller's owner
/// value as ARGV[1] and answer <c>{-1, current owner or nil}</c> when it is not the current one. Only commands of
/// Redis 6.2 and later that Redis 7 and its open forks keep (GET, SET PX, INCR, PEXPIRE, PTTL, RPUSH, LPOP with a
/// count, LLEN, LRANGE, HGET, HSET, HMGET, DEL).
/// </summary>
internal static class RedisScripts
{
    // Gives an existing key a TTL of at least ttl milliseconds (one without a TTL gets one); never shortens it.
    private const string Extend = """
        local function extend(key, ttl)
          local current = redis.call('PTTL', key)
          if current == -1 or (current >= 0 and current < ttl) then redis.call('PEXPIRE', key, ttl) end
        end
        """;

    /// <summary>
    /// ARGV: node id, nonce, lease ttl ms, and '1' to extend the snapshot too (the journal's acquire: every key of the
    /// session lives at least the ttl, or a quiet session resumed late in its window loses its snapshot before its
    /// first commit). Returns the new epoch.
    /// </summary>
    public const string Acquire = Extend + """

        local epoch = redis.call('INCR', KEYS[2])
        local ttl = tonumber(ARGV[3])
        extend(KEYS[2], ttl)
        redis.call('SET', KEYS[3], epoch .. ':' .. ARGV[1] .. ':' .. ARGV[2], 'PX', ttl)
        extend(KEYS[4], ttl)
        extend(KEYS[5], ttl)
        if ARGV[4] == '1' then extend(KEYS[1], ttl) end
        return epoch
        """;

    /// <summary>ARGV: owner value, lease ttl ms. Returns {1} or the fenced answer.</summary>
    public const string Renew = Extend + """

        local owner = redis.call('GET', KEYS[3])
        if owner ~= ARGV[1] then return {-1, owner} end
        local ttl = tonumber(ARGV[2])
        for i = 2, 5 do extend(KEYS[i], ttl) end
        return {1}
        """;

    /// <summary>ARGV: owner value. Deletes the owner key when it is still ours. Returns 1 when released, 0 when not ours.</summary>
    public const string Release = """
        if redis.call('GET', KEYS[3]) == ARGV[1] then
          redis.call('DEL', KEYS[3])
          return 1
        end
        return 0
        """;

    /// <summary>
    /// ARGV: owner value. Deletes every key of the session when it is still ours (the session ended). Returns 1 when
    /// ended, 0 when not ours (another node owns it now, or it is gone).
    /// </summary>
    public const string End = """
        if redis.call('GET', KEYS[3]) == ARGV[1] then
          redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
          return 1
        end
        return 0
        """;

    /// <summary>
    /// ARGV: owner value, snapshot bytes, snapshot ttl ms (0 or less: already expired, delete it), lease ttl ms.
    /// Returns {1} or the fenced answer. Every other key of the session lives at least as long as the snapshot.
    /// </summary>
    public const string SaveFenced = Extend + """

        local owner = redis.call('GET', KEYS[3])
        if owner ~= ARGV[1] then return {-1, owner} end
        local ttl = tonumber(ARGV[3])
        if ttl <= 0 then
          redis.call('DEL', KEYS[1])
        else
          redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
        end
        local keep = math.max(ttl, tonumber(ARGV[4]))
        for i = 2, 5 do extend(KEYS[i], keep) end
        return {1}
        """;

    /// <summary>Returns how many snapshot keys were deleted (0 or 1); deletes every key of the session.</summary>
    public const string Remove = """
        local removed = redis.call('DEL', KEYS[1])
        redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
        return removed
        """;

    /// <summary>
    /// ARGV: owner value, lease ttl ms, max messages, max bytes, first sequence, then one entry per message (flags
    /// byte and payload). Appends the entries not already there, so a retried append is harmless.
    /// Returns {1, next sequence}, the fenced answer, {-2, next sequence} for a gap, or {-3, count, bytes} when full.
    /// </summary>
    public const string Append = Extend + """

        local owner = redis.call('GET', KEYS[3])
        if owner ~= ARGV[1] then return {-1, owner} end
        local first = tonumber(ARGV[5])
        local n = #ARGV - 5
        local cursor = redis.call('HMGET', KEYS[5], 'next', 'bytes')
        local nextSeq = tonumber(cursor[1])
        local bytes = tonumber(cursor[2]) or 0
        local fresh = nextSeq == nil
        if fresh then nextSeq = first end
        if first > nextSeq then return {-2, nextSeq} end
        local skip = nextSeq - first
        if skip < n then
          local add = 0
          for i = 6 + skip, #ARGV do add = add + #ARGV[i] end
          local count = redis.call('LLEN', KEYS[4])
          -- Checked before any write: a refused append leaves no key behind (none without a TTL).
          if count + n - skip > tonumber(ARGV[3]) or bytes + add > tonumber(ARGV[4]) then return {-3, count, bytes} end
          redis.call('RPUSH', KEYS[4], unpack(ARGV, 6 + skip, #ARGV))
          nextSeq = first + n
          redis.call('HSET', KEYS[5], 'next', nextSeq, 'bytes', bytes + add)
        end
        if fresh then redis.call('HSET', KEYS[5], 'acked', first - 1) end
        local ttl = tonumber(ARGV[2])
        for i = 2, 5 do extend(KEYS[i], ttl) end
        return {1, nextSeq}
        """;

    /// <summary>
    /// ARGV: owner value, lease ttl ms, outbound acknowledged (-1: unchanged), inbound delivered (-1: unchanged).
    /// Drops acknowledged entries from the head of the log; cursors only move forward.
    /// Returns {1, acknowledged, inbound, next sequence}, the fenced answer, or {-2, last sent} when the ack is beyond it.
    /// </summary>
    public const string Acknowledge = Extend + """

        local owner = redis.call('GET', KEYS[3])
        if owner ~= ARGV[1] then return {-1, owner} end
        local cursor = redis.call('HMGET', KEYS[5], 'next', 'acked', 'bytes', 'inbound')
        local upTo = tonumber(ARGV[3])
        local nextSeq = tonumber(cursor[1])
        local acked = tonumber(cursor[2])
        local bytes = tonumber(cursor[3]) or 0
        local inbound = tonumber(cursor[4]) or 0
        if nextSeq == nil then
          acked = math.max(upTo, 0)
          nextSeq = acked + 1
          redis.call('HSET', KEYS[5], 'next', nextSeq, 'acked', acked, 'bytes', 0)
        end
        if upTo > nextSeq - 1 then return {-2, nextSeq - 1} end
        if upTo > acked then
          local popped = redis.call('LPOP', KEYS[4], upTo - acked)
          if popped then
            for i = 1, #popped do bytes = bytes - #popped[i] end
          end
          acked = upTo
          redis.call('HSET', KEYS[5], 'acked', acked, 'bytes', math.max(bytes, 0))
        end
        local delivered = tonumber(ARGV[4])
        if delivered > inbound then
          inbound = delivered
          redis.call('HSET', KEYS[5], 'inbound', inbound)
        end
        local ttl = tonumber(ARGV[2])
        for i = 2, 5 do extend(KEYS[i], ttl) end
        return {1, acked, inbound, nextSeq}
        """;

    /// <summary>
    /// The server's one write per batch (<see cref="Session.Store.ISessionJournal.CommitAsync"/>), all or nothing.
    /// ARGV: owner value, keep ms, max messages, max bytes, outbound acknowledged (-1: unchanged), inbound delivered
    /// (-1: unchanged), snapshot bytes (empty: unchanged), first sequence (0: no messages), then one entry per message.
    /// Appends the entries not already there (the ones its ack covers count as gone for the limits), drops acknowledged ones (an ack beyond the log is clamped), moves the
    /// cursors forward only, replaces the snapshot, and gives every key of the session at least keep ms.
    /// Returns {1, next sequence}, the fenced answer, {-2, next sequence} for a gap, or {-3, count, bytes} when full.
    /// </summary>
    public const string Commit = Extend + """

        local owner = redis.call('GET', KEYS[3])
        if owner ~= ARGV[1] then return {-1, owner} end
        local keep = tonumber(ARGV[2])
        local first = tonumber(ARGV[8])
        local n = #ARGV - 8
        local cursor = redis.call('HMGET', KEYS[5], 'next', 'acked', 'bytes', 'inbound')
        local nextSeq = tonumber(cursor[1])
        local acked = tonumber(cursor[2]) or 0
        local bytes = tonumber(cursor[3]) or 0
        local inbound = tonumber(cursor[4]) or 0
        if nextSeq == nil then
          if n > 0 then nextSeq = first else nextSeq = math.max(tonumber(ARGV[5]), 0) + 1 end
          acked = nextSeq - 1
        end
        if n > 0 then
          if first > nextSeq then return {-2, nextSeq} end
          local skip = nextSeq - first
          if skip < n then
            local add = 0
            for i = 9 + skip, #ARGV do add = add + #ARGV[i] end
            local count = redis.call('LLEN', KEYS[4])
            -- The entries this commit's ack covers count as gone when the limits are checked: a full log whose client has
            -- just acknowledged some has room for the messages of the same commit (the replay buffer made room at that ack
            -- too). They are only read here: nothing is written before the check, so a refused commit changes nothing, and a
            -- Redis out of memory refuses the commit's first write (RPUSH) rather than let the rest through.
            local covered = math.min(tonumber(ARGV[5]), nextSeq - 1) - acked
            local coveredBytes = 0
            if covered > 0 then
              local entries = redis.call('LRANGE', KEYS[4], 0, covered - 1)
              for i = 1, #entries do coveredBytes = coveredBytes + #entries[i] end
            else
              covered = 0
            end
            if count - covered + n - skip > tonumber(ARGV[3]) or bytes - coveredBytes + add > tonumber(ARGV[4]) then return {-3, count, bytes} end
            redis.call('RPUSH', KEYS[4], unpack(ARGV, 9 + skip, #ARGV))
            nextSeq = first + n
            bytes = bytes + add
          end
        end
        local upTo = math.min(tonumber(ARGV[5]), nextSeq - 1)
        if upTo > acked then
          local popped = redis.call('LPOP', KEYS[4], upTo - acked)
          if popped then
            for i = 1, #popped do bytes = bytes - #popped[i] end
          end
          acked = upTo
        end
        local delivered = tonumber(ARGV[6])
        if delivered > inbound then inbound = delivered end
        redis.call('HSET', KEYS[5], 'next', nextSeq, 'acked', acked, 'bytes', math.max(bytes, 0), 'inbound', inbound)
        if #ARGV[7] > 0 then redis.call('SET', KEYS[1], ARGV[7], 'PX', keep) end
        for i = 1, 5 do extend(KEYS[i], keep) end
        return {1, nextSeq}
        """;

    /// <summary>
    /// No ARGV. Returns {found (0/1), next, acked, inbound, epoch, owner, entries...} read at one instant.
    /// </summary>
    public const string Read = """
        local cursor = redis.call('HMGET', KEYS[5], 'next', 'acked', 'inbound')
        local epoch = redis.call('GET', KEYS[2])
        local owner = redis.call('GET', KEYS[3])
        if not cursor[1] then return {0, 0, 0, 0, epoch or 0, owner} end
        local result = {1, cursor[1], cursor[2], cursor[3] or 0, epoch or 0, owner}
        local entries = redis.call('LRANGE', KEYS[4], 0, -1)
        for i = 1, #entries do result[#result + 1] = entries[i] end
        return result
        """;
}
