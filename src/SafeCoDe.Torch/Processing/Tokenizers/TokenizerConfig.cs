using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>
/// What <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c> and <c>added_tokens.json</c> say (all optional):
/// special-token names, extra added tokens, BOS/EOS flags and the settings of the Python tokenizer class.
/// </summary>
public sealed class TokenizerConfig
{
    /// <summary>No files: every setting absent.</summary>
    public static TokenizerConfig Empty { get; } = new();

    /// <summary>tokenizer_class, e.g. "LlamaTokenizer".</summary>
    public string? TokenizerClass { get; init; }
    /// <summary>Content of bos_token (string or AddedToken object), from tokenizer_config.json, else special_tokens_map.json.</summary>
    public string? BosToken { get; init; }
    /// <summary>Content of eos_token, as <see cref="BosToken"/>.</summary>
    public string? EosToken { get; init; }
    /// <summary>Content of unk_token, as <see cref="BosToken"/>.</summary>
    public string? UnkToken { get; init; }
    /// <summary>Content of pad_token, as <see cref="BosToken"/>.</summary>
    public string? PadToken { get; init; }
    /// <summary>add_bos_token; null when the file does not say.</summary>
    public bool? AddBosToken { get; init; }
    /// <summary>add_eos_token; null when the file does not say.</summary>
    public bool? AddEosToken { get; init; }
    /// <summary>clean_up_tokenization_spaces (removes spaces before punctuation when decoding); null when absent.</summary>
    public bool? CleanUpTokenizationSpaces { get; init; }
    /// <summary>add_prefix_space; null when absent.</summary>
    public bool? AddPrefixSpace { get; init; }
    /// <summary>do_lower_case (BERT-style tokenizers); null when absent.</summary>
    public bool? DoLowerCase { get; init; }
    /// <summary>tokenize_chinese_chars (BERT-style tokenizers); null when absent.</summary>
    public bool? TokenizeChineseChars { get; init; }
    /// <summary>strip_accents (BERT-style tokenizers); null when absent.</summary>
    public bool? StripAccents { get; init; }
    /// <summary>Tokens from added_tokens_decoder and added_tokens.json, with additional_special_tokens marked special.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];

    /// <summary>Reads the config files of a folder; missing files are fine.</summary>
    public static TokenizerConfig Load(string dir)
    {
        var cfg = ReadJson(Path.Combine(dir, "tokenizer_config.json"));
        var map = ReadJson(Path.Combine(dir, "special_tokens_map.json"));
        var addedJson = ReadJson(Path.Combine(dir, "added_tokens.json"));

        string? Tok(string key) => TokenContent(cfg?[key]) ?? TokenContent(map?[key]);
        var additional = new HashSet<string>(StringComparer.Ordinal);
        foreach (var src in new[] { cfg?["additional_special_tokens"], map?["additional_special_tokens"] })
            if (src is JsonArray arr) foreach (var x in arr) if (TokenContent(x) is { } c) additional.Add(c);
        var names = new[] { "bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token" }
            .Select(Tok).Where(x => x is not null).Cast<string>().ToHashSet(StringComparer.Ordinal);

        var added = new Dictionary<int, AddedToken>();
        if (cfg?["added_tokens_decoder"] is JsonObject dec)
            foreach (var (k, v) in dec)
                if (int.TryParse(k, out var id) && v is not null && TokenizerLoader.CheckId(id, "added_tokens_decoder") >= 0)
                    added[id] = new AddedToken(Json.Str(v, "content"), id, Json.Bool(v, "special", false), Json.Bool(v, "single_word", false),
                        Json.Bool(v, "lstrip", false), Json.Bool(v, "rstrip", false), Json.Bool(v, "normalized", false));
        if (addedJson is JsonObject aj)
            foreach (var (content, v) in aj)
                if (v is JsonValue jv && jv.TryGetValue<int>(out var id) && TokenizerLoader.CheckId(id, "added_tokens.json") >= 0 && !added.ContainsKey(id))
                    added[id] = new AddedToken(content, id, names.Contains(content) || additional.Contains(content));
        var list = added.Values.Select(t => additional.Contains(t.Content) || names.Contains(t.Content) ? t with { Special = true } : t).OrderBy(t => t.Id).ToList();

        return new TokenizerConfig
        {
            TokenizerClass = cfg is null ? null : Json.OptStr(cfg, "tokenizer_class"),
            BosToken = Tok("bos_token"),
            EosToken = Tok("eos_token"),
            UnkToken = Tok("unk_token"),
            PadToken = Tok("pad_token"),
            AddBosToken = cfg is null ? null : Json.OptBool(cfg, "add_bos_token"),
            AddEosToken = cfg is null ? null : Json.OptBool(cfg, "add_eos_token"),
            CleanUpTokenizationSpaces = cfg is null ? null : Json.OptBool(cfg, "clean_up_tokenization_spaces"),
            AddPrefixSpace = cfg is null ? null : Json.OptBool(cfg, "add_prefix_space"),
            DoLowerCase = cfg is null ? null : Json.OptBool(cfg, "do_lower_case"),
            TokenizeChineseChars = cfg is null ? null : Json.OptBool(cfg, "tokenize_chinese_chars"),
            StripAccents = cfg is null ? null : Json.OptBool(cfg, "strip_accents"),
            AddedTokens = list,
        };
    }

    private static JsonNode? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(TokenizerLoader.ReadText(path), documentOptions: new System.Text.Json.JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = System.Text.Json.JsonCommentHandling.Skip }); }
        catch (System.Text.Json.JsonException ex) { throw new FormatException($"{path}: {ex.Message}", ex); }
    }

    /// <summary>A token value: "text" or {"content": "text", ...} (AddedToken) or null.</summary>
    private static string? TokenContent(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o => Json.OptStr(o, "content"),
        _ => null,
    };
}
