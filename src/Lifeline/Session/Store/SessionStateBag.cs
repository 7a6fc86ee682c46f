using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Lifeline.Session.Store;

/// <summary>
/// A small key-value bag an application keeps with its session (strings to strings); it travels with the session to
/// a store and to another process on resume. Bounded in entries and in UTF-8 bytes of keys plus values; a write that
/// would exceed a bound is refused (<see cref="TrySet"/> returns false, <see cref="Set"/> throws), never truncated.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class SessionStateBag
{
    /// <summary>The default entry bound: 32.</summary>
    public const int DefaultMaxEntries = 32;

    /// <summary>The default byte bound: 4 KiB of UTF-8 keys and values.</summary>
    public const int DefaultMaxBytes = 4 * 1024;

    private readonly Dictionary<string, string> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private int _bytes;

    /// <summary>Creates an empty bag.</summary>
    /// <param name="maxEntries">The most entries. Default 32. At least 1.</param>
    /// <param name="maxBytes">The most UTF-8 bytes of keys and values together. Default 4 KiB. At least 1.</param>
    public SessionStateBag(int maxEntries = DefaultMaxEntries, int maxBytes = DefaultMaxBytes)
    {
        MaxEntries = OptionGuard.AtLeast(maxEntries, 1, nameof(maxEntries));
        MaxBytes = OptionGuard.AtLeast(maxBytes, 1, nameof(maxBytes));
    }

    /// <summary>The entry bound.</summary>
    public int MaxEntries { get; }

    /// <summary>The byte bound.</summary>
    public int MaxBytes { get; }

    /// <summary>The number of entries.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>The UTF-8 bytes of keys and values held.</summary>
    public int Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Reads a value.</summary>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_lock)
        {
            return _entries.TryGetValue(key, out value);
        }
    }

    /// <summary>Adds or replaces a value unless that would exceed a bound.</summary>
    /// <returns>False, with the bag unchanged, when the entry does not fit.</returns>
    public bool TrySet(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        var size = Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value);
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var same) && same == value)
            {
                return true; // no change: nothing for a shared store to commit
            }

            var existing = _entries.TryGetValue(key, out var old) ? Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(old) : 0;
            if ((old is null && _entries.Count + 1 > MaxEntries) || _bytes - existing + size > MaxBytes)
            {
                return false;
            }

            _entries[key] = value;
            _bytes += size - existing;
        }

        Changed?.Invoke();
        return true;
    }

    /// <summary>Raised after each change, outside the bag's lock: a shared store then commits the state (the session's writer).</summary>
    internal Action? Changed { get; set; }

    /// <summary>Adds or replaces a value.</summary>
    /// <exception cref="SessionStateFullException">The entry does not fit within the bounds.</exception>
    public void Set(string key, string value)
    {
        if (!TrySet(key, value))
        {
            throw new SessionStateFullException(
                $"The session state bag cannot take '{key}': its bounds are {MaxEntries} entries and {MaxBytes} bytes of UTF-8 keys and values. Keep session state small; store the rest elsewhere by key.");
        }
    }

    /// <summary>Removes a value.</summary>
    public bool Remove(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_lock)
        {
            if (!_entries.Remove(key, out var old))
            {
                return false;
            }

            _bytes -= Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(old);
        }

        Changed?.Invoke();
        return true;
    }

    /// <summary>A copy of the entries (for a snapshot).</summary>
    public IReadOnlyDictionary<string, string> ToDictionary()
    {
        lock (_lock)
        {
            return new Dictionary<string, string>(_entries, StringComparer.Ordinal);
        }
    }
}

/// <summary>Thrown by <see cref="SessionStateBag.Set"/> when an entry does not fit the bag's bounds.</summary>
public sealed class SessionStateFullException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public SessionStateFullException()
        : base("The session state bag is full.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public SessionStateFullException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and inner exception.</summary>
    public SessionStateFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
