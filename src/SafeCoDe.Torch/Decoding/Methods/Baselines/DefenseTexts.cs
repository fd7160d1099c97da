namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>
/// The baseline defenses' texts (prompts, patches, the refusal constant), shipped inside the library as files under
/// <c>Baselines/Texts/</c>: a header of <c>#</c> lines naming the text's source, a line <c>---</c>, then the text byte
/// for byte (the file's one final newline is not part of it). Each defense takes a file option that replaces its text.
/// </summary>
public static class DefenseTexts
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Cache = new();

    /// <summary>The returned text of the filter-type defenses (PPL filter, self-examination).</summary>
    public static string Refusal => Get("refusal");

    /// <summary>The built-in text named <paramref name="name"/> (e.g. <c>paraphrase</c>, <c>dpp-best</c>).</summary>
    /// <exception cref="ArgumentException">No such text ships with the library.</exception>
    public static string Get(string name) => Cache.GetOrAdd(name, n =>
    {
        using var stream = typeof(DefenseTexts).Assembly.GetManifestResourceStream($"baselines.{n}.txt")
            ?? throw new ArgumentException($"no built-in defense text '{n}'");
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
        return Parse(reader.ReadToEnd(), n);
    });

    /// <summary>The text of a file in the shipped form (header, <c>---</c>, text, one final newline).</summary>
    public static string Parse(string file, string name)
    {
        const string Marker = "\n---\n";
        int at = file.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0 || file[..at].Split('\n').Any(l => !l.StartsWith('#'))) throw new FormatException($"defense text '{name}': expected '#' header lines, a line '---', then the text");
        var text = file[(at + Marker.Length)..];
        return text.EndsWith('\n') ? text[..^1] : text;
    }

    /// <summary>
    /// <paramref name="template"/> with each <c>{key}</c> replaced by its value in one pass (a value that itself holds
    /// <c>{…}</c> is not replaced again).
    /// </summary>
    public static string Fill(string template, params (string Key, string Value)[] values)
    {
        var sb = new System.Text.StringBuilder(template.Length);
        for (int i = 0; i < template.Length; i++)
        {
            var hit = template[i] == '{' ? values.FirstOrDefault(v => string.CompareOrdinal(template, i + 1, v.Key + "}", 0, v.Key.Length + 1) == 0) : default;
            if (hit.Key is null) { sb.Append(template[i]); continue; }
            sb.Append(hit.Value);
            i += hit.Key.Length + 1;
        }
        return sb.ToString();
    }

    /// <summary>The source line of a built-in text's header (for records and docs).</summary>
    public static string Source(string name)
    {
        using var stream = typeof(DefenseTexts).Assembly.GetManifestResourceStream($"baselines.{name}.txt")
            ?? throw new ArgumentException($"no built-in defense text '{name}'");
        using var reader = new StreamReader(stream);
        string? line;
        while ((line = reader.ReadLine()) is not null && line.StartsWith('#'))
            if (line.StartsWith("# source: ", StringComparison.Ordinal)) return line["# source: ".Length..];
        return "";
    }
}
