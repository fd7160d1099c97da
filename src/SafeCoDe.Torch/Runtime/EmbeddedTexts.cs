namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// Texts shipped inside the library as data (defense prompts, guard policies): a header of <c>#</c> lines naming the
/// text's source, a line <c>---</c>, then the text byte for byte (the file's one final newline is not part of it).
/// </summary>
public static class EmbeddedTexts
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Cache = new();

    /// <summary>The text of the embedded resource <paramref name="resource"/> (e.g. <c>guards.llavaguard-policy.txt</c>).</summary>
    /// <exception cref="ArgumentException">No such resource.</exception>
    public static string Get(string resource) => Cache.GetOrAdd(resource, r =>
    {
        using var stream = typeof(EmbeddedTexts).Assembly.GetManifestResourceStream(r) ?? throw new ArgumentException($"no built-in text '{r}'");
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
        return Parse(reader.ReadToEnd(), r);
    });

    /// <summary>The text of a file in the shipped form (header, <c>---</c>, text, one final newline).</summary>
    /// <exception cref="FormatException">The file is not in that form.</exception>
    public static string Parse(string file, string name)
    {
        const string Marker = "\n---\n";
        int at = file.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0 || file[..at].Split('\n').Any(l => !l.StartsWith('#'))) throw new FormatException($"text '{name}': expected '#' header lines, a line '---', then the text");
        var text = file[(at + Marker.Length)..];
        return text.EndsWith('\n') ? text[..^1] : text;
    }

    /// <summary>The <c># source:</c> line of an embedded text's header ("" when it has none).</summary>
    public static string Source(string resource)
    {
        using var stream = typeof(EmbeddedTexts).Assembly.GetManifestResourceStream(resource) ?? throw new ArgumentException($"no built-in text '{resource}'");
        using var reader = new StreamReader(stream);
        string? line;
        while ((line = reader.ReadLine()) is not null && line.StartsWith('#'))
            if (line.StartsWith("# source: ", StringComparison.Ordinal)) return line["# source: ".Length..];
        return "";
    }
}
