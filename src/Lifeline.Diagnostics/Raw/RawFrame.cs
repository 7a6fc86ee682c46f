namespace Lifeline.Diagnostics.Raw;

/// <summary>One WebSocket frame as the diagnostics read it: opcode, FIN and the unmasked payload (fragments are not joined).</summary>
internal readonly record struct RawFrame(byte Opcode, bool Fin, byte[] Payload)
{
    public const byte Continuation = 0x0;
    public const byte Text = 0x1;
    public const byte Binary = 0x2;
    public const byte Close = 0x8;
    public const byte Ping = 0x9;
    public const byte Pong = 0xA;

    /// <summary>Close, Ping and Pong: at most 125 bytes, never fragmented.</summary>
    public bool IsControl => Opcode >= Close;
}
