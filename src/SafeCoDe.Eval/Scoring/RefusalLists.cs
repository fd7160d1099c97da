using System.Text;
using SafeCoDe.Torch.Processing.Tokenizers;

namespace SafeCoDe.Eval.Scoring;

/// <summary>
/// One language's refusal phrases for the keyword scorer: <see cref="Language"/> is the code reports show (<c>en</c>,
/// <c>de</c>, …), <see cref="Names"/> every name a sample's language label may use for it (the code, the MSTS split
/// name, the language's own name), <see cref="Source"/> where the phrases came from.
/// </summary>
public sealed record RefusalList(string Language, IReadOnlyList<string> Names, IReadOnlyList<string> Phrases, string Source)
{
    /// <summary>Whether a sample's language label names this list (ignoring case and surrounding space).</summary>
    public bool Covers(string language) => Names.Any(n => string.Equals(n, language.Trim(), StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// The built-in refusal lists: English (<see cref="KeywordScorer.DefaultPhrases"/>) and one embedded data file per
/// further MSTS language (<c>Scoring/Refusals/&lt;code&gt;.txt</c>, compiled into this assembly so that the library and
/// the tool carry them wherever they are installed), and the file format those use.
/// </summary>
public static class RefusalLists
{
    /// <summary>The names of the English list (samples without a language label are English).</summary>
    public static readonly IReadOnlyList<string> EnglishNames = ["en", "english"];

    private const string ResourcePrefix = "SafeCoDe.Eval.Refusals.";

    /// <summary>English first, then the embedded lists in code order.</summary>
    public static IReadOnlyList<RefusalList> BuiltIn { get; } = LoadBuiltIn();

    private static List<RefusalList> LoadBuiltIn()
    {
        var lists = new List<RefusalList> { new("en", EnglishNames, KeywordScorer.DefaultPhrases, "built-in English list (docs/evaluation.md)") };
        var assembly = typeof(RefusalLists).Assembly;
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var lines = reader.ReadToEnd().Split('\n');
            lists.Add(Parse(lines, "built-in " + name[ResourcePrefix.Length..], defaultNames: null));
        }
        return lists;
    }

    /// <summary>
    /// A phrase list in the data-file format: one phrase per line, blank lines and <c>#</c> comments skipped; a
    /// <c># language: CODE NAME…</c> line names the language (first word = code). Without one the list is for
    /// <paramref name="defaultNames"/> (its first entry = code); with neither, the file is an error naming the line expected.
    /// </summary>
    public static RefusalList Parse(IEnumerable<string> lines, string source, IReadOnlyList<string>? defaultNames)
    {
        IReadOnlyList<string>? names = null;
        var phrases = new List<string>();
        foreach (var raw in lines)
        {
            var line = raw.Trim().TrimStart('\uFEFF');
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                var body = line.TrimStart('#').Trim();
                if (names is null && body.StartsWith("language:", StringComparison.OrdinalIgnoreCase))
                    names = body["language:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                continue;
            }
            phrases.Add(line);
        }
        names ??= defaultNames;
        if (names is null || names.Count == 0) throw new FormatException($"{source}: no '# language: CODE NAME…' line saying which language the phrases are for");
        if (phrases.Count == 0) throw new FormatException($"{source}: no phrases (one per line; # starts a comment)");
        return new RefusalList(names[0].ToLowerInvariant(), names, phrases, source);
    }

    /// <summary><paramref name="lists"/> with <paramref name="replacement"/> in place of the list of its language (or added).</summary>
    public static IReadOnlyList<RefusalList> Replace(IReadOnlyList<RefusalList> lists, RefusalList replacement)
    {
        var result = lists.Where(l => !replacement.Names.Any(l.Covers)).ToList();
        result.Insert(0, replacement);
        return result;
    }
}

/// <summary>
/// How answers and phrases are made comparable before matching, so that a real refusal is not missed for the way it
/// is typed: Unicode compatibility form (full-width letters and punctuation, ligatures, no-break spaces become their
/// plain forms), apostrophe variants as <c>'</c>, Russian <c>ё</c> as <c>е</c>, Arabic-script letter variants unified
/// (Arabic and Farsi yeh <c>ي</c>/<c>ى</c>/<c>ی</c>, kaf <c>ك</c>/<c>ک</c>, alef with hamza or madda as bare alef),
/// Arabic vowel marks and tatweel dropped, the Persian zero-width non-joiner read as a space, Devanagari nukta dropped
/// and candrabindu read as anusvara, case folded, and every run of white space as one space.
/// </summary>
public static class RefusalText
{
    /// <summary>The comparable form of <paramref name="s"/> (trimmed).</summary>
    public static string Normalize(string s)
    {
        // the engine's own NFKC table: the runtime's normalisation is off under InvariantGlobalization
        var text = UnicodeNormalization.Normalize(s, NormalizationForm.FormKC).ToLowerInvariant();
        var sb = new StringBuilder(text.Length);
        bool space = false;
        foreach (var c in text)
        {
            var m = Map(c);
            if (m == '\0') continue;
            if (char.IsWhiteSpace(m)) { space = sb.Length > 0; continue; }
            if (space) { sb.Append(' '); space = false; }
            sb.Append(m);
        }
        return sb.ToString();
    }

    /// <summary>One character's comparable form; <c>'\0'</c> drops it.</summary>
    private static char Map(char c) => c switch
    {
        '\u2019' or '\u2018' or '\u02BC' or '\u2032' or '`' or '\u00B4' => '\'',
        'ё' => 'е',
        '\u064A' or '\u0649' => '\u06CC',           // Arabic yeh, alef maksura → Farsi yeh
        '\u0643' => '\u06A9',                        // Arabic kaf → keheh
        '\u0623' or '\u0625' or '\u0622' or '\u0671' => '\u0627', // alef with hamza/madda/wasla → alef
        '\u0640' => '\0',                            // tatweel
        '\u200C' => ' ',                             // zero-width non-joiner (Persian half-space)
        '\u200D' or '\u00AD' or '\uFEFF' => '\0',
        '\u093C' => '\0',                            // Devanagari nukta
        '\u0901' => '\u0902',                        // candrabindu → anusvara
        _ when c is >= '\u064B' and <= '\u065F' || c == '\u0670' => '\0', // Arabic vowel marks, shadda, sukun, superscript alef
        _ => c,
    };
}
