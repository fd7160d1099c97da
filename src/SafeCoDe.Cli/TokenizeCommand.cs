using System.Text.Json;
using SafeCoDe.Torch.Processing.Tokenizers;

namespace SafeCoDe.Cli;

/// <summary>
/// <c>safecode tokenize --model DIR [--jsonl] [--add-special-tokens]</c>: one JSON array of ids per input line.
/// Without --jsonl each line is the text itself (so it cannot contain a newline); with --jsonl each line is a JSON
/// string literal. BOS and other template tokens only with --add-special-tokens.
/// </summary>
public static class TokenizeCommand
{
    public static readonly IReadOnlySet<string> Flags = new HashSet<string> { "jsonl", "add-special-tokens" };

    public static int Run(Args a, TextReader input, TextWriter o, TextWriter e)
    {
        var dir = a.Require("model");
        bool jsonl = a.Flag("jsonl");
        bool addSpecial = a.Flag("add-special-tokens");
        a.RejectUnknown();

        ITokenizer tok;
        try { tok = TokenizerLoader.Load(dir); }
        catch (Exception ex) when (ex is IOException or FormatException or NotSupportedException or UnauthorizedAccessException or JsonException)
        {
            e.WriteLine($"safecode tokenize: error: {ex.Message}");
            return 1;
        }

        int lineNo = 0;
        while (input.ReadLine() is { } line)
        {
            lineNo++;
            string text = line;
            if (jsonl)
            {
                if (line.Trim().Length == 0) continue; // blank lines between records
                try { text = JsonSerializer.Deserialize<string>(line) ?? throw new JsonException("null is not a string"); }
                catch (JsonException ex)
                {
                    e.WriteLine($"safecode tokenize: line {lineNo}: not a JSON string literal ({ex.Message})");
                    return 1;
                }
            }
            o.Write('[');
            o.Write(string.Join(',', tok.Encode(text, addSpecial)));
            o.Write(']');
            o.Write('\n');
        }
        o.Flush();
        return 0;
    }
}
