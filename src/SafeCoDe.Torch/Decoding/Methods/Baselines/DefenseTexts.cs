namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>
/// The baseline defenses' texts (prompts, patches, the refusal constant), shipped inside the library as files under
/// <c>Baselines/Texts/</c>: a header of <c>#</c> lines naming the text's source, a line <c>---</c>, then the text byte
/// for byte (the file's one final newline is not part of it). Each defense takes a file option that replaces its text.
/// </summary>
public static class DefenseTexts
{
    /// <summary>The returned text of the filter-type defenses (PPL filter, self-examination).</summary>
    public static string Refusal => Get("refusal");

    /// <summary>The built-in text named <paramref name="name"/> (e.g. <c>paraphrase</c>, <c>dpp-best</c>).</summary>
    /// <exception cref="ArgumentException">No such text ships with the library.</exception>
    public static string Get(string name)
    {
        try { return Runtime.EmbeddedTexts.Get($"baselines.{name}.txt"); }
        catch (ArgumentException) { throw new ArgumentException($"no built-in defense text '{name}'"); }
    }

    /// <summary>The text of a file in the shipped form (header, <c>---</c>, text, one final newline).</summary>
    public static string Parse(string file, string name) => Runtime.EmbeddedTexts.Parse(file, name);

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
    public static string Source(string name) => Runtime.EmbeddedTexts.Source($"baselines.{name}.txt");
}
