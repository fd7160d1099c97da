using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>
/// Loads the tokenizer of a Hugging Face checkpoint folder, choosing the file the way transformers' fast tokenizers do:
/// <list type="number">
/// <item><c>tokenizer.json</c> → <see cref="HfTokenizer"/> (every component the supported families use);</item>
/// <item><c>tokenizer.model</c> → <see cref="SentencePieceTokenizer"/> (LlamaTokenizer semantics);</item>
/// <item><c>vocab.json</c> + <c>merges.txt</c> → byte-level BPE with the pre-tokenizer of the Python class named in
///   tokenizer_config.json (Qwen2Tokenizer: NFC + Qwen2 regex; otherwise GPT-2's regex);</item>
/// <item><c>vocab.txt</c> → BERT WordPiece (do_lower_case default true), e.g. InstructBLIP's <c>qformer_tokenizer/</c>.</item>
/// </list>
/// tokenizer_config.json, special_tokens_map.json and added_tokens.json supply special tokens and extra added tokens.
/// </summary>
public static class TokenizerLoader
{
    /// <summary>Qwen2Tokenizer's pre-tokenization regex (transformers' tokenization_qwen2.py).</summary>
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Loads the tokenizer in <paramref name="modelDir"/> (see the class summary for the order).</summary>
    /// <exception cref="TokenizerFormatException">A tokenizer file is malformed, not UTF-8, over a limit, or not a regular file.</exception>
    public static ITokenizer Load(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"tokenizer folder '{modelDir}' does not exist");
        SafeCoDe.Torch.Runtime.ModelFolder.CheckLinks(modelDir);
        try { return LoadUnchecked(modelDir); }
        catch (TokenizerFormatException) { throw; }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or IndexOutOfRangeException or KeyNotFoundException
                                      or System.Text.Json.JsonException or FormatException or OverflowException or ArgumentException or InvalidDataException
                                      or SafeCoDe.Torch.Runtime.InputFileException)
        {
            // one boundary for every way a hostile file can fail the parser: a typed error naming the folder, never a crash
            var why = e is NullReferenceException or IndexOutOfRangeException or KeyNotFoundException ? "a required field is missing or has the wrong type" : e.Message;
            throw new TokenizerFormatException($"{modelDir}: the tokenizer files cannot be used: {why}", e);
        }
    }

    private static ITokenizer LoadUnchecked(string modelDir)
    {
        var config = TokenizerConfig.Load(modelDir);
        string P(string f) => Path.Combine(modelDir, f);
        if (File.Exists(P("tokenizer.json"))) return HfTokenizer.FromFile(P("tokenizer.json"), config);
        if (File.Exists(P("tokenizer.model"))) return new SentencePieceTokenizer(SentencePieceModel.FromFile(P("tokenizer.model")), config);
        if (File.Exists(P("vocab.json")) && File.Exists(P("merges.txt")))
            return new HfTokenizer(ByteLevelBpeJson(P("vocab.json"), P("merges.txt"), config), config, "vocab.json+merges.txt");
        if (File.Exists(P("vocab.txt"))) return new HfTokenizer(WordPieceJson(P("vocab.txt"), config), config, "vocab.txt");
        throw new FileNotFoundException($"no tokenizer in '{modelDir}': expected tokenizer.json, tokenizer.model, vocab.json + merges.txt, or vocab.txt");
    }

    /// <summary>A tokenizer file as strict UTF-8 within <see cref="SafeCoDe.Torch.Runtime.InputLimits.MaxTokenizerFileBytes"/>.</summary>
    internal static string ReadText(string path)
        => SafeCoDe.Torch.Runtime.BoundedFile.ReadAllText(path, SafeCoDe.Torch.Runtime.InputLimits.Current.MaxTokenizerFileBytes, "tokenizer file");

    /// <summary>Checks that a token id is usable as an index: 0 ≤ id &lt; <see cref="SafeCoDe.Torch.Runtime.InputLimits.MaxVocabSize"/>.</summary>
    internal static int CheckId(int id, string what)
    {
        int max = SafeCoDe.Torch.Runtime.InputLimits.Current.MaxVocabSize;
        if (id < 0 || id >= max) throw new TokenizerFormatException($"{what}: token id {id} is outside [0, {max}) (InputLimits.MaxVocabSize)");
        return id;
    }

    /// <summary>InstructBLIP's Q-Former tokenizer (BERT uncased) in <c>modelDir/qformer_tokenizer</c>.</summary>
    public static ITokenizer LoadQFormer(string modelDir) => Load(Path.Combine(modelDir, "qformer_tokenizer"));

    /// <summary>The tokenizer.json that transformers' converter would write for a byte-level BPE vocab.json + merges.txt.</summary>
    public static JsonObject ByteLevelBpeJson(string vocabPath, string mergesPath, TokenizerConfig config)
    {
        var vocab = JsonNode.Parse(ReadText(vocabPath)) as JsonObject ?? throw new FormatException($"{vocabPath} is not a JSON object");
        var merges = new JsonArray();
        foreach (var line in ReadText(mergesPath).Split('\n'))
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Trim().Length == 0) continue;
            merges.Add(line);
        }
        bool qwen = config.TokenizerClass?.StartsWith("Qwen2", StringComparison.Ordinal) == true;
        JsonNode preTokenizer = qwen
            ? new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = Qwen2Pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    ByteLevelNode(false, false)),
            }
            : ByteLevelNode(config.AddPrefixSpace ?? false, true);
        return new JsonObject
        {
            ["version"] = "1.0",
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false, ["vocab"] = vocab, ["merges"] = merges,
            },
            ["normalizer"] = qwen ? new JsonObject { ["type"] = "NFC" } : null,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = Template(config, config.AddBosToken ?? false, config.AddEosToken ?? false),
            ["decoder"] = ByteLevelNode(false, true),
            ["added_tokens"] = AddedTokensJson(config.AddedTokens),
        };
    }

    /// <summary>The tokenizer.json of transformers' BertTokenizerFast for a vocab.txt.</summary>
    public static JsonObject WordPieceJson(string vocabPath, TokenizerConfig config)
    {
        var vocab = new JsonObject();
        int i = 0;
        var text = ReadText(vocabPath);
        foreach (var line in (text.EndsWith('\n') ? text[..^1] : text).Split('\n'))
        {
            var tok = line.TrimEnd('\r', '\n');
            if (!vocab.ContainsKey(tok)) vocab[tok] = i;
            i++;
        }
        string unk = config.UnkToken ?? "[UNK]";
        var specials = new[] { config.PadToken ?? "[PAD]", unk, "[CLS]", "[SEP]", "[MASK]" }.Where(vocab.ContainsKey)
            .Select(s => new AddedToken(s, vocab[s]!.GetValue<int>(), true)).ToList();
        foreach (var t in config.AddedTokens) if (!specials.Any(s => s.Id == t.Id)) specials.Add(t);
        JsonNode? post = vocab.ContainsKey("[CLS]") && vocab.ContainsKey("[SEP]")
            ? new JsonObject { ["type"] = "BertProcessing", ["sep"] = new JsonArray("[SEP]", vocab["[SEP]"]!.GetValue<int>()), ["cls"] = new JsonArray("[CLS]", vocab["[CLS]"]!.GetValue<int>()) }
            : null;
        bool lower = config.DoLowerCase ?? true;
        return new JsonObject
        {
            ["version"] = "1.0",
            ["normalizer"] = new JsonObject { ["type"] = "BertNormalizer", ["clean_text"] = true, ["handle_chinese_chars"] = config.TokenizeChineseChars ?? true, ["strip_accents"] = config.StripAccents, ["lowercase"] = lower },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
            ["model"] = new JsonObject { ["type"] = "WordPiece", ["unk_token"] = unk, ["continuing_subword_prefix"] = "##", ["max_input_chars_per_word"] = 100, ["vocab"] = vocab },
            ["post_processor"] = post,
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["added_tokens"] = AddedTokensJson(specials),
        };
    }

    private static JsonObject ByteLevelNode(bool addPrefixSpace, bool useRegex)
        => new() { ["type"] = "ByteLevel", ["add_prefix_space"] = addPrefixSpace, ["trim_offsets"] = false, ["use_regex"] = useRegex };

    private static JsonNode? Template(TokenizerConfig config, bool bos, bool eos)
    {
        if (!(bos && config.BosToken is not null) && !(eos && config.EosToken is not null)) return null;
        var single = new JsonArray();
        if (bos && config.BosToken is not null) single.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = config.BosToken, ["type_id"] = 0 } });
        single.Add(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } });
        if (eos && config.EosToken is not null) single.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = config.EosToken, ["type_id"] = 0 } });
        return new JsonObject { ["type"] = "TemplateProcessing", ["single"] = single };
    }

    private static JsonArray AddedTokensJson(IEnumerable<AddedToken> tokens)
    {
        var arr = new JsonArray();
        foreach (var t in tokens)
            arr.Add(new JsonObject
            {
                ["id"] = t.Id, ["content"] = t.Content, ["single_word"] = t.SingleWord, ["lstrip"] = t.LStrip, ["rstrip"] = t.RStrip,
                ["normalized"] = t.Normalized, ["special"] = t.Special,
            });
        return arr;
    }
}

/// <summary>A tokenizer file is malformed, not valid UTF-8, over a limit, or declares unusable ids.</summary>
public sealed class TokenizerFormatException(string message, Exception? inner = null) : FormatException(message, inner);
