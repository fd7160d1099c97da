using System.CommandLine;
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
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = CliOptions.Model("Folder with tokenizer.json, tokenizer.model, vocab.json + merges.txt or vocab.txt (+ tokenizer_config.json)");
        var jsonl = new Option<bool>("--jsonl") { Description = "Each input line is a JSON string literal (so inputs can hold newlines)" };
        var special = new Option<bool>("--add-special-tokens") { Description = "Add BOS and other template tokens" };
        var cmd = new Command("tokenize", """
            Read text from stdin, one input per line, and write one JSON array of token ids per line.
            """) { model, jsonl, special };
        Cli.SetExamples(cmd, "echo 'USER: <image> Describe it.' | safecode tokenize --model path/to/llava-1.5-7b-hf --add-special-tokens");
        cmd.SetHandler((p, io) => Run(p.GetValue(model)!, p.GetValue(jsonl), p.GetValue(special), io.In, io.Out, io.Error));
        return cmd;
    }

    private static int Run(string dir, bool jsonl, bool addSpecial, TextReader input, TextWriter o, TextWriter e)
    {

        var tok = TokenizerLoader.Load(dir); // failures go through the central error mapping (exit 1)

        // one line is held at a time, and never more than the prompt limit of it (a 50 MB line is refused, not read)
        int max = SafeCoDe.Torch.Runtime.InputLimits.Current.MaxPromptChars;
        foreach (var (lineNo, read) in SafeCoDe.Torch.Runtime.BoundedLines.Read(input, jsonl ? 6 * max + 2 : max))
        {
            var line = read ?? throw new SafeCoDe.Torch.Runtime.InputLimitException($"line {lineNo} is longer than the {max:N0}-character limit (InputLimits.MaxPromptChars)");
            string text = line;
            if (jsonl)
            {
                if (line.Trim().Length == 0) continue; // blank lines between records
                try { text = JsonSerializer.Deserialize<string>(line) ?? throw new JsonException("null is not a string"); }
                catch (JsonException ex)
                {
                    throw new InvalidDataException($"line {lineNo}: not a JSON string literal ({ex.Message.Split(" Path:")[0]})");
                }
                if (text.Length > max) throw new SafeCoDe.Torch.Runtime.InputLimitException($"line {lineNo} holds {text.Length:N0} characters, over the {max:N0}-character limit (InputLimits.MaxPromptChars)");
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
