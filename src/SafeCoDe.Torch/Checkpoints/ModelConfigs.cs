namespace SafeCoDe.Torch.Checkpoints;

/// <summary>Rotary embedding settings, read from either <c>rope_parameters</c> (transformers 5) or <c>rope_theta</c> + <c>rope_scaling</c> (transformers 4).</summary>
public sealed record RopeConfig(double Theta, string Type, double Factor, int[]? MropeSection)
{
    internal static RopeConfig Read(JsonConfig c, double defaultTheta)
    {
        if (c.Object("rope_parameters") is { } p)
        {
            var type = p.StringOrNull("rope_type") ?? p.StringOrNull("type") ?? "default";
            var mrope = p.Has("mrope_section") ? p.IntArray("mrope_section", []) : null;
            if (p.StringOrNull("type") == "mrope" || mrope is not null) type = type == "default" ? "mrope" : type;
            return new RopeConfig(p.Double("rope_theta", c.Double("rope_theta", defaultTheta)), type, p.Double("factor", 1.0), mrope);
        }
        double theta = c.Double("rope_theta", defaultTheta);
        if (c.Object("rope_scaling") is { } s)
        {
            var type = s.StringOrNull("rope_type") ?? s.StringOrNull("type") ?? "default";
            var mrope = s.Has("mrope_section") ? s.IntArray("mrope_section", []) : null;
            if (mrope is not null && type == "default") type = "mrope";
            return new RopeConfig(theta, type, s.Double("factor", 1.0), mrope);
        }
        return new RopeConfig(theta, "default", 1.0, null);
    }
}

/// <summary>A Llama-style decoder (Llama, Vicuna, Qwen2, the IDEFICS and Idefics3 text models).</summary>
public sealed record TextConfig(
    string ModelType, int VocabSize, int HiddenSize, int IntermediateSize, int NumLayers, int NumHeads, int NumKvHeads,
    int HeadDim, double RmsNormEps, RopeConfig Rope, int MaxPositions, bool TieWordEmbeddings, bool AttentionBias,
    bool MlpBias, string HiddenAct, int? BosTokenId, int[] EosTokenIds, int? PadTokenId)
{
    private readonly bool? _outputBias;

    /// <summary>Whether the attention output projection has a bias: <see cref="AttentionBias"/> unless the family says otherwise (Qwen2 biases only q/k/v).</summary>
    public bool OutputBias { get => _outputBias ?? AttentionBias; init => _outputBias = value; }

    /// <summary>Python-side defaults for one text model type, used where the file omits a field.</summary>
    internal sealed record Defaults(int Vocab, int Hidden, int Intermediate, int Layers, int Heads, int? KvHeads, double Eps,
        double Theta, int MaxPos, bool AttentionBias);

    internal static readonly Defaults Llama = new(32000, 4096, 11008, 32, 32, null, 1e-6, 10000, 2048, false);
    internal static readonly Defaults Qwen2VL = new(152064, 8192, 29568, 80, 64, 8, 1e-5, 1e6, 32768, true);
    // Qwen2_5_VLTextConfig's Python defaults are Qwen2VLTextConfig's (the 72B shape), not the 7B checkpoint's values.
    internal static readonly Defaults Qwen25VL = Qwen2VL;
    internal static readonly Defaults Idefics = new(32000, 4096, 11008, 32, 32, null, 1e-6, 10000, 2048, false);

    internal static TextConfig Read(JsonConfig c, Defaults d, string fallbackType, JsonConfig? root = null)
    {
        int hidden = c.Int("hidden_size", d.Hidden), heads = c.Int("num_attention_heads", d.Heads);
        if (heads <= 0 || hidden % heads != 0 && !c.Has("head_dim"))
            throw new ConfigException(c.File, c.PathOf("num_attention_heads"), $"hidden_size {hidden} is not divisible by num_attention_heads {heads}");
        int kv = c.Int("num_key_value_heads", d.KvHeads ?? heads);
        if (kv <= 0 || heads % kv != 0)
            throw new ConfigException(c.File, c.PathOf("num_key_value_heads"), $"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv}");
        // token ids may sit on the text config or on the root (flat layouts)
        int? Tok(string k) => c.IntOrNull(k) ?? root?.IntOrNull(k);
        var eos = c.Has("eos_token_id") ? c.IntOrIntArray("eos_token_id", []) : root?.IntOrIntArray("eos_token_id", []) ?? [];
        bool tie = c.Has("tie_word_embeddings") ? c.Bool("tie_word_embeddings", false) : root?.Bool("tie_word_embeddings", false) ?? false;
        return new TextConfig(
            c.String("model_type", fallbackType), c.Int("vocab_size", d.Vocab), hidden, c.Int("intermediate_size", d.Intermediate),
            c.Int("num_hidden_layers", d.Layers), heads, kv, c.Int("head_dim", hidden / heads), c.Double("rms_norm_eps", d.Eps),
            RopeConfig.Read(c, d.Theta), c.Int("max_position_embeddings", d.MaxPos), tie,
            c.Bool("attention_bias", d.AttentionBias), c.Bool("mlp_bias", false), c.String("hidden_act", "silu"),
            Tok("bos_token_id"), eos, Tok("pad_token_id"));
    }
}

/// <summary>CLIP / SigLIP / BLIP / IDEFICS style ViT settings.</summary>
public sealed record VitConfig(
    string ModelType, int HiddenSize, int IntermediateSize, int NumLayers, int NumHeads, int ImageSize, int PatchSize,
    int NumChannels, string HiddenAct, double LayerNormEps, bool QkvBias)
{
    /// <summary>image_size / patch_size.</summary>
    public int PatchesPerSide => ImageSize / PatchSize;
    /// <summary>Patches per image, without a class token.</summary>
    public int NumPatches => PatchesPerSide * PatchesPerSide;

    internal static VitConfig Read(JsonConfig c, string type, int hidden, int inter, int layers, int heads, int image, int patch, string act, double eps, bool qkvBias = true, string hiddenKey = "hidden_size")
        => new(c.String("model_type", type), c.Int(hiddenKey, hidden), c.Int("intermediate_size", inter), c.Int("num_hidden_layers", layers),
               c.Int("num_attention_heads", heads), c.Int("image_size", image), c.Int("patch_size", patch), c.Int("num_channels", 3),
               c.String("hidden_act", act), c.Double("layer_norm_eps", eps), c.Bool("qkv_bias", qkvBias));
}

/// <summary>The typed config of one checkpoint, whatever the layout of its config.json.</summary>
public abstract record ModelConfig
{
    /// <summary>config.json's <c>model_type</c> (one of <see cref="ModelFamilies"/>).</summary>
    public string ModelType { get; init; } = "";
    /// <summary>The config.json this was read from.</summary>
    public string ConfigPath { get; init; } = "";
    /// <summary>config.json's <c>architectures</c> (empty when absent).</summary>
    public string[] Architectures { get; init; } = [];
    /// <summary>Storage dtype the config declares (torch_dtype / dtype), e.g. "bfloat16"; null if absent.</summary>
    public string? DType { get; init; }
    /// <summary>"transformers-4" (rope_theta/rope_scaling, torch_dtype, flat fields) or "transformers-5" (rope_parameters, dtype, nested).</summary>
    public string ConfigLayout { get; init; } = "";
    /// <summary>config.json's <c>transformers_version</c>, or null.</summary>
    public string? TransformersVersion { get; init; }
    /// <summary>The language model's settings, whether nested under text_config or flat on the root.</summary>
    public TextConfig Text { get; init; } = null!;

    /// <summary>Reads <c>DIR/config.json</c> into the typed config of its family.</summary>
    public static ModelConfig Load(string modelDir)
    {
        var path = File.Exists(modelDir) ? modelDir : Path.Combine(modelDir, "config.json");
        var c = JsonConfig.Load(path);
        var type = c.String("model_type");
        string layout = DetectLayout(c);
        var family = ModelFamilies.TryGet(type) ?? throw new ConfigException(path, "model_type",
            $"unsupported model_type '{type}'; supported: {string.Join(", ", ModelFamilies.Registered)}");
        ModelConfig cfg = family.ReadConfig(c);
        return cfg with
        {
            ConfigLayout = layout,
            TransformersVersion = c.StringOrNull("transformers_version"),
            DType = c.StringOrNull("dtype") ?? c.StringOrNull("torch_dtype") ?? c.Object("text_config")?.StringOrNull("dtype") ?? c.Object("text_config")?.StringOrNull("torch_dtype"),
            Architectures = c.StringArray("architectures", []),
        };
    }

    private static string DetectLayout(JsonConfig c)
    {
        var t = c.Object("text_config");
        bool v5 = c.Has("rope_parameters") || c.Has("dtype") || (t?.Has("rope_parameters") ?? false) || (t?.Has("dtype") ?? false);
        return v5 ? "transformers-5" : "transformers-4";
    }

    internal static T Base<T>(JsonConfig c, TextConfig text) where T : ModelConfig, new() => new()
    {
        ModelType = c.String("model_type"), ConfigPath = c.File, Architectures = [], ConfigLayout = "", Text = text,
    };
}
