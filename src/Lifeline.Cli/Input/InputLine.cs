namespace Lifeline.Cli.Input;

/// <summary>One line of stdin without its line ending, or only its length when it was longer than the limit.</summary>
/// <param name="Number">The line number, from 1.</param>
/// <param name="Data">The bytes of the line; null when it was too long and was dropped.</param>
/// <param name="Length">The length of the line in bytes (without the line ending).</param>
internal readonly record struct InputLine(long Number, byte[]? Data, long Length)
{
    public bool TooLong => Data is null;
}
