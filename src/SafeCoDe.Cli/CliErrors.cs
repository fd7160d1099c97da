using System.CommandLine;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Cli;

/// <summary>Wrong command-line usage (a bad option value, a missing file named by an option): exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The exit codes of every <c>safecode</c> command (also printed by <c>safecode --help</c>).
/// </summary>
public static class ExitCodes
{
    /// <summary>Success (for <c>verify</c>: the parity check passed).</summary>
    public const int Ok = 0;
    /// <summary>The work failed: a model, image or input that cannot be used, a failed check, an I/O error.</summary>
    public const int Failed = 1;
    /// <summary>Wrong usage: unknown command or option, a missing or malformed option value.</summary>
    public const int Usage = 2;
    /// <summary>The native runtime (libtorch, CUDA) could not be loaded or used.</summary>
    public const int Runtime = 3;
    /// <summary>An unexpected internal error (a bug: please report it with <c>--verbose</c> output).</summary>
    public const int Internal = 70;
    /// <summary>Cancelled (Ctrl+C).</summary>
    public const int Cancelled = 130;

    /// <summary>The table printed in the root help.</summary>
    public const string Help = """
        exit codes:
          0    success
          1    failed: unusable model, image or input; a failed check; an I/O error
          2    wrong usage: unknown command or option, a missing or malformed value
          3    native runtime (libtorch / CUDA) not loadable or not usable
          70   internal error (a bug; rerun with --verbose and report the trace)
          130  cancelled
        """;
}

/// <summary>
/// The one place where failures become messages and exit codes: <c>safecode &lt;command&gt;: &lt;what&gt; — &lt;why&gt;</c>
/// on stderr, no stack trace unless <c>--verbose</c>.
/// </summary>
public static class CliErrors
{
    /// <summary>Maps an exception to (what, exit code).</summary>
    public static (string What, int Code) Classify(Exception ex) => ex switch
    {
        UsageException => ("invalid usage", ExitCodes.Usage),
        OperationCanceledException => ("cancelled", ExitCodes.Cancelled),
        NativeRuntimeException => ("runtime error", ExitCodes.Runtime),
        SafeCoDe.Torch.Safety.JudgeException => ("the judge failed", ExitCodes.Failed),
        InputLimitException => ("input over a limit", ExitCodes.Failed),
        InputFileException => ("cannot use the file", ExitCodes.Failed),
        SafeCoDe.Torch.Processing.PromptException => ("cannot use the prompt", ExitCodes.Failed),
        SafeCoDe.Torch.Processing.Tokenizers.TokenizerFormatException => ("cannot use the tokenizer", ExitCodes.Failed),
        _ when NativeErrors.IsOutOfMemory(ex) => ("out of memory", ExitCodes.Failed),
        _ when NativeErrors.IsNative(ex) => ("libtorch error", ExitCodes.Failed),
        CheckpointException => ("cannot use the model", ExitCodes.Failed),
        ImageDecodeException => ("cannot use the image", ExitCodes.Failed),
        FileNotFoundException or DirectoryNotFoundException => ("file not found", ExitCodes.Failed),
        UnauthorizedAccessException or IOException => ("I/O error", ExitCodes.Failed),
        System.Text.Json.JsonException => ("invalid JSON", ExitCodes.Failed),
        InvalidDataException => ("invalid input", ExitCodes.Failed),
        ArgumentException or InvalidOperationException or NotSupportedException or FormatException or HttpRequestException => ("error", ExitCodes.Failed),
        _ => ("internal error", ExitCodes.Internal),
    };

    /// <summary>Writes the one-line message (plus the trace with <paramref name="verbose"/>) and returns the exit code.</summary>
    public static int Report(string command, Exception ex, TextWriter err, bool verbose)
    {
        var (what, code) = Classify(ex);
        if (code == ExitCodes.Cancelled && CliCancel.Requested)
        {
            if (CliCancel.ClaimReport()) err.WriteLine(CliCancel.Line(command));
            return code;
        }
        var why = OneLine(ex is System.Reflection.TargetInvocationException or AggregateException && ex.InnerException is { } inner ? inner.Message : ex.Message);
        if (NativeErrors.IsNative(ex) || ex is OutOfMemoryException) why = NativeErrors.Summarize(ex); // no native backtrace
        why = SafeCoDe.Torch.Safety.TerminalText.Sanitize(why, 2000, singleLine: true);
        if (code == ExitCodes.Internal) why = $"{ex.GetType().Name}: {why}";
        err.WriteLine($"safecode {command}: {what} — {why}");
        if (code == ExitCodes.Usage) err.WriteLine($"run 'safecode {command} --help' for usage");
        if (verbose || Environment.GetEnvironmentVariable("SAFECODE_DEBUG") == "1") err.WriteLine(ex);
        else if (code == ExitCodes.Internal) err.WriteLine("(rerun with --verbose for the stack trace)");
        return code;
    }

    /// <summary>Reports parse errors (unknown options or commands with "did you mean", bad values naming the option).</summary>
    public static int ReportParseErrors(ParseResult parse, TextWriter err)
    {
        var command = CommandPath(parse.CommandResult.Command);
        var prefix = command.Length == 0 ? "safecode" : $"safecode {command}";
        var unmatched = new HashSet<string>(parse.UnmatchedTokens);
        foreach (var error in parse.Errors)
        {
            var msg = error.Message;
            var token = unmatched.FirstOrDefault(t => msg.Contains($"'{t}'"));
            if (token is not null)
            {
                var what = token.StartsWith('-') ? $"unknown option: {token}"
                    : parse.CommandResult.Command.Subcommands.Count > 0 ? $"unknown command '{token}'" : $"unexpected argument '{token}'";
                var suggestions = Suggest(parse.CommandResult.Command, token);
                err.WriteLine($"{prefix}: invalid usage — {what}{(suggestions.Count > 0 ? $" (did you mean {string.Join(" or ", suggestions)}?)" : "")}");
            }
            else err.WriteLine($"{prefix}: invalid usage — {Friendly(msg)}");
        }
        err.WriteLine($"run '{prefix} --help' for usage");
        return ExitCodes.Usage;
    }

    /// <summary>"generate", "eval run", or "" for the root, as written on the command line.</summary>
    public static string CommandPath(Command c)
    {
        var names = new List<string>();
        for (Symbol? s = c; s is Command cmd && s.Parents.Any(); s = s.Parents.FirstOrDefault()) names.Insert(0, cmd.Name);
        return names.Count == 0 ? "" : string.Join(' ', names);
    }

    private static readonly System.Text.RegularExpressions.Regex CannotParse =
        new(@"^Cannot parse argument '(.*)' for option '(.*)' as expected type '(.*)'\.?$");

    /// <summary>"--seed 'abc': expected an integer" instead of the parser's type names.</summary>
    private static string Friendly(string msg)
    {
        var m = CannotParse.Match(msg);
        if (!m.Success) return msg;
        var type = m.Groups[3].Value.Replace("System.Nullable`1[", "").TrimEnd(']');
        var expected = type switch
        {
            "System.Int32" or "System.Int64" => "an integer",
            "System.Double" or "System.Single" => "a number",
            "System.Boolean" => "true or false",
            _ => type,
        };
        return $"{m.Groups[2].Value} '{m.Groups[1].Value}': expected {expected}";
    }

    private static List<string> Suggest(Command c, string token)
    {
        IEnumerable<string> candidates = token.StartsWith('-')
            ? AllOptions(c).SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--"))
            : c.Subcommands.Where(s => !s.Hidden).Select(s => s.Name);
        var t = token.Split('=')[0];
        return candidates.Distinct()
            .Select(n => (n, d: Distance(t, n)))
            .Where(x => x.d <= Math.Max(2, x.n.Length / 4) || (t.Length >= 4 && x.n.StartsWith(t, StringComparison.Ordinal)))
            .OrderBy(x => x.d).Take(3).Select(x => x.n).ToList();
    }

    private static IEnumerable<Option> AllOptions(Command c)
    {
        foreach (var o in c.Options) yield return o;
        foreach (var p in c.Parents.OfType<Command>())
            foreach (var o in AllOptions(p).Where(o => o.Recursive)) yield return o;
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    private static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries)).Trim();
}
