using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net.WebSockets;

namespace Lifeline.CloseCodes;

/// <summary>
/// A WebSocket close status code. Unlike <see cref="WebSocketCloseStatus"/>, which stops at 1011,
/// this type names every registered code (1012 Service Restart, 1013 Try Again Later, ...) and knows
/// which range a value falls in and whether an endpoint may put it in a Close frame.
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
public readonly record struct CloseCode : IComparable<CloseCode>
{
    /// <summary>The largest value a Close frame can carry (two bytes, unsigned).</summary>
    public const int MaxWireValue = ushort.MaxValue;

    /// <summary>Creates a close code.</summary>
    /// <param name="value">A value from 0 to 65535 (what two bytes of a Close frame can hold).</param>
    /// <exception cref="ArgumentOutOfRangeException">The value cannot be carried by a Close frame.</exception>
    public CloseCode(int value)
    {
        if (value is < 0 or > MaxWireValue)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value,
                $"A close code is a two-byte unsigned value (0-{MaxWireValue}); {value} cannot be represented. Registered codes are 1000-1015 and 3000-4999.");
        }

        Value = value;
    }

    /// <summary>The numeric value.</summary>
    public int Value { get; }

    /// <summary>1000: the purpose of the connection is fulfilled.</summary>
    public static CloseCode NormalClosure => new(1000);
    /// <summary>1001: the endpoint is going away (server down, page navigated).</summary>
    public static CloseCode GoingAway => new(1001);
    /// <summary>1002: a protocol error.</summary>
    public static CloseCode ProtocolError => new(1002);
    /// <summary>1003: a data type the endpoint cannot accept.</summary>
    public static CloseCode UnsupportedData => new(1003);
    /// <summary>1004: reserved, no meaning.</summary>
    public static CloseCode Reserved => new(1004);
    /// <summary>1005: observed only; a Close frame came without a code.</summary>
    public static CloseCode NoStatusReceived => new(1005);
    /// <summary>1006: observed only; the connection ended without a Close frame.</summary>
    public static CloseCode AbnormalClosure => new(1006);
    /// <summary>1007: a message's data did not match its type.</summary>
    public static CloseCode InvalidPayloadData => new(1007);
    /// <summary>1008: the endpoint's policy was violated.</summary>
    public static CloseCode PolicyViolation => new(1008);
    /// <summary>1009: a message was too big.</summary>
    public static CloseCode MessageTooBig => new(1009);
    /// <summary>1010: the server did not negotiate an extension the client requires.</summary>
    public static CloseCode MandatoryExtension => new(1010);
    /// <summary>1011: the server met an unexpected condition.</summary>
    public static CloseCode InternalError => new(1011);
    /// <summary>1012: the server is restarting; come back after a brief delay.</summary>
    public static CloseCode ServiceRestart => new(1012);
    /// <summary>1013: the server is overloaded; try again later.</summary>
    public static CloseCode TryAgainLater => new(1013);
    /// <summary>1014: a gateway got an invalid response upstream.</summary>
    public static CloseCode BadGateway => new(1014);
    /// <summary>1015: observed only; the TLS handshake failed.</summary>
    public static CloseCode TlsHandshakeFailure => new(1015);
    /// <summary>3000 (IANA): the client must authenticate.</summary>
    public static CloseCode Unauthorized => new(3000);
    /// <summary>3003 (IANA): the client is not allowed.</summary>
    public static CloseCode Forbidden => new(3003);
    /// <summary>3008 (IANA): a timeout.</summary>
    public static CloseCode Timeout => new(3008);

    /// <summary>The range this value belongs to.</summary>
    public CloseCodeRange Range => Value switch
    {
        < 1000 => CloseCodeRange.NotUsed,
        < 3000 => CloseCodeRange.Protocol,
        < 4000 => CloseCodeRange.Registered,
        < 5000 => CloseCodeRange.Private,
        _ => CloseCodeRange.Invalid,
    };

    /// <summary>
    /// Whether an endpoint may put this code in a Close frame. False for 1004 (reserved), for 1005, 1006
    /// and 1015 (which only describe what was observed), for unassigned protocol codes and outside 1000-4999.
    /// </summary>
    public bool CanBeSent => Value switch
    {
        >= 1000 and <= 1003 => true,
        >= 1007 and <= 1014 => true,
        >= 3000 and <= 4999 => true,
        _ => false,
    };

    /// <summary>True for 1005, 1006 and 1015: values a library reports locally but must never send.</summary>
    public bool IsObservedOnly => Value is 1005 or 1006 or 1015;

    /// <summary>The catalogue entry for this code (registered codes and ranges alike).</summary>
    public CloseCodeInfo Info => CloseCodeCatalog.Get(this);

    /// <summary>Converts from the .NET enum (which includes values it cannot name, cast from int).</summary>
    public static CloseCode FromWebSocketCloseStatus(WebSocketCloseStatus status) => new((int)status);

    /// <summary>Converts to the .NET enum for <see cref="WebSocket.CloseAsync"/>; 1012-1014 become unnamed enum values.</summary>
    public WebSocketCloseStatus ToWebSocketCloseStatus() => (WebSocketCloseStatus)Value;

    /// <summary>
    /// Parses a number ("1006") or a catalogue name in any common spelling ("abnormal-closure",
    /// "AbnormalClosure", "abnormal closure").
    /// </summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out CloseCode code)
    {
        code = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            if (number > MaxWireValue)
            {
                return false;
            }

            code = new CloseCode(number);
            return true;
        }

        var info = CloseCodeCatalog.FindByName(text);
        if (info is null)
        {
            return false;
        }

        code = info.Code;
        return true;
    }

    /// <inheritdoc />
    public int CompareTo(CloseCode other) => Value.CompareTo(other.Value);

    /// <summary>The number, e.g. "1012".</summary>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Implicit conversion to the numeric value.</summary>
    public static implicit operator int(CloseCode code) => code.Value;

    /// <summary>Explicit conversion from a number; throws when it does not fit in a Close frame.</summary>
    public static explicit operator CloseCode(int value) => new(value);

    /// <summary>Compares two codes numerically.</summary>
    public static bool operator <(CloseCode left, CloseCode right) => left.Value < right.Value;
    /// <summary>Compares two codes numerically.</summary>
    public static bool operator >(CloseCode left, CloseCode right) => left.Value > right.Value;
    /// <summary>Compares two codes numerically.</summary>
    public static bool operator <=(CloseCode left, CloseCode right) => left.Value <= right.Value;
    /// <summary>Compares two codes numerically.</summary>
    public static bool operator >=(CloseCode left, CloseCode right) => left.Value >= right.Value;
}
