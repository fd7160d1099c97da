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

/// <summary>The families this engine knows, by config <c>model_type</c>.</summary>
public static class ModelFamilies
{
    /// <summary>A <c>model_type</c> value of config.json.</summary>
    public const string Llava = "llava", LlavaNext = "llava_next", Qwen2VL = "qwen2_vl", Qwen25VL = "qwen2_5_vl",
        InstructBlip = "instructblip", Idefics = "idefics", Idefics3 = "idefics3";

    /// <summary>Every family above, in this order.</summary>
    public static readonly IReadOnlyList<string> All = [Llava, LlavaNext, Qwen2VL, Qwen25VL, InstructBlip, Idefics, Idefics3];
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
        ModelConfig cfg = type switch
        {
            ModelFamilies.Llava or ModelFamilies.LlavaNext => LlavaConfig.Read(c),
            ModelFamilies.Qwen2VL or ModelFamilies.Qwen25VL => QwenVLConfig.Read(c),
            ModelFamilies.InstructBlip => InstructBlipConfig.Read(c),
            ModelFamilies.Idefics => IdeficsConfig.Read(c),
            ModelFamilies.Idefics3 => Idefics3Config.Read(c),
            _ => throw new ConfigException(path, "model_type",
                $"unsupported model_type '{type}'; supported: {string.Join(", ", ModelFamilies.All)}"),
        };
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

/// <summary>LLaVA-1.5 (<c>llava</c>) and LLaVA-NeXT (<c>llava_next</c>).</summary>
public sealed record LlavaConfig : ModelConfig
{
    /// <summary>The CLIP vision tower.</summary>
    public VitConfig Vision { get; init; } = null!;
    /// <summary>The <c>&lt;image&gt;</c> placeholder id (image_token_index or image_token_id; 32000 by default).</summary>
    public int ImageTokenId { get; init; }
    /// <summary>Activation between the projector's two linears.</summary>
    public string ProjectorHiddenAct { get; init; } = "gelu";
    /// <summary>Whether the projector's linears have biases (multimodal_projector_bias).</summary>
    public bool ProjectorBias { get; init; } = true;
    /// <summary>Hidden-state indices taken from the vision tower (one, or several concatenated).</summary>
    public int[] VisionFeatureLayers { get; init; } = [-2];
    /// <summary>"default" drops the CLS token, "full" keeps it.</summary>
    public string VisionFeatureSelectStrategy { get; init; } = "default";
    /// <summary>LLaVA-NeXT anyres candidate resolutions as [height, width]; null for LLaVA-1.5.</summary>
    public int[][]? ImageGridPinpoints { get; init; }
    /// <summary>config.json's image_seq_length (576 by default); informational: token counts come from the image processor's layouts.</summary>
    public int ImageSeqLength { get; init; }

    internal static LlavaConfig Read(JsonConfig c)
    {
        var t = c.Object("text_config");
        var text = t is null ? TextConfig.Read(c.ObjectOrEmpty("text_config"), TextConfig.Llama, "llama", c)
                             : TextConfig.Read(t, TextConfig.Llama, "llama", c);
        var v = c.Object("vision_config");
        // LlavaConfig's default tower is CLIP ViT-L/14-336; an explicit clip_vision_model dict takes CLIPVisionConfig defaults.
        var vision = v is null
            ? VitConfig.Read(c.ObjectOrEmpty("vision_config"), "clip_vision_model", 1024, 4096, 24, 16, 336, 14, "quick_gelu", 1e-5)
            : VitConfig.Read(v, "clip_vision_model", 768, 3072, 12, 12, 224, 32, "quick_gelu", 1e-5);
        int[] layers = c.Raw("vision_feature_layer") is { } raw && raw.ValueKind == System.Text.Json.JsonValueKind.Array
            ? c.IntArray("vision_feature_layer", [-2]) : [c.Int("vision_feature_layer", -2)];
        var strategy = c.String("vision_feature_select_strategy", "default");
        if (strategy is not ("default" or "full"))
            throw new ConfigException(c.File, "vision_feature_select_strategy", $"expected \"default\" or \"full\", found \"{strategy}\"");
        bool next = c.String("model_type") == ModelFamilies.LlavaNext;
        return Base<LlavaConfig>(c, text) with
        {
            Vision = vision,
            ImageTokenId = c.IntOrNull("image_token_index") ?? c.Int("image_token_id", 32000),
            ProjectorHiddenAct = c.String("projector_hidden_act", "gelu"),
            ProjectorBias = c.Bool("multimodal_projector_bias", true),
            VisionFeatureLayers = layers,
            VisionFeatureSelectStrategy = strategy,
            ImageGridPinpoints = next ? c.IntMatrix("image_grid_pinpoints", [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]) : null,
            ImageSeqLength = c.Int("image_seq_length", 576),
        };
    }
}

/// <summary>Qwen2-VL and Qwen2.5-VL vision tower settings.</summary>
public sealed record QwenVisionConfig(
    int Depth, int EmbedDim, int OutHiddenSize, int NumHeads, int IntermediateSize, string HiddenAct, int InChannels,
    int PatchSize, int SpatialMergeSize, int TemporalPatchSize, int WindowSize, int[] FullAttBlockIndexes, int TokensPerSecond,
    double RopeTheta = 10000.0)
{
    /// <summary>Per-head width: embed_dim / num_heads.</summary>
    public int HeadDim => EmbedDim / NumHeads;
    /// <summary>Values per patch row of pixel_values: channels × temporal patch × patch × patch (1176 for the released models).</summary>
    public int PatchInputDim => InChannels * TemporalPatchSize * PatchSize * PatchSize;
}

/// <summary>Qwen2-VL (<c>qwen2_vl</c>) and Qwen2.5-VL (<c>qwen2_5_vl</c>): flat (Hub) or nested text fields.</summary>
public sealed record QwenVLConfig : ModelConfig
{
    /// <summary>The vision tower.</summary>
    public QwenVisionConfig Vision { get; init; } = null!;
    /// <summary>The <c>&lt;|image_pad|&gt;</c> id.</summary>
    public int ImageTokenId { get; init; }
    /// <summary>The <c>&lt;|video_pad|&gt;</c> id (videos are not supported; the id is only banned during decoding).</summary>
    public int VideoTokenId { get; init; }
    /// <summary>The <c>&lt;|vision_start|&gt;</c> id (M-RoPE positions start after it).</summary>
    public int VisionStartTokenId { get; init; }
    /// <summary>The <c>&lt;|vision_end|&gt;</c> id.</summary>
    public int VisionEndTokenId { get; init; }
    /// <summary>True for Qwen2.5-VL (window attention, RMSNorm and SwiGLU in the vision tower).</summary>
    public bool IsQwen25 => ModelType == ModelFamilies.Qwen25VL;

    /// <summary>The vision rotary base: <c>rope_parameters.rope_theta</c> (transformers 5) or <c>rope_theta</c>, 10000 by default.</summary>
    private static double VisionRopeTheta(JsonConfig v) =>
        v.Object("rope_parameters")?.DoubleOrNull("rope_theta") ?? v.Double("rope_theta", 10000.0);

    internal static QwenVLConfig Read(JsonConfig c)
    {
        bool q25 = c.String("model_type") == ModelFamilies.Qwen25VL;
        var t = c.Object("text_config");
        var defaults = q25 ? TextConfig.Qwen25VL : TextConfig.Qwen2VL;
        var text = TextConfig.Read(t ?? c, defaults, q25 ? "qwen2_5_vl_text" : "qwen2_vl_text", c);
        text = text with { AttentionBias = true }; // Qwen2 attention always has q/k/v biases
        if (text.Rope.MropeSection is null)
            throw new ConfigException(c.File, t is null ? "rope_scaling.mrope_section" : "text_config.rope_parameters.mrope_section",
                "Qwen-VL needs an M-RoPE section split (mrope_section)");
        var v = c.ObjectOrEmpty("vision_config");
        QwenVisionConfig vision;
        if (q25)
        {
            int hidden = v.Int("hidden_size", 3584); // Qwen2_5_VLVisionConfig's Python default (the Hub files all set 1280)
            vision = new QwenVisionConfig(v.Int("depth", 32), hidden, v.Int("out_hidden_size", 3584), v.Int("num_heads", 16),
                v.Int("intermediate_size", 3420), v.String("hidden_act", "silu"), v.IntOrNull("in_channels") ?? v.Int("in_chans", 3),
                v.IntOrNull("patch_size") ?? v.Int("spatial_patch_size", 14), v.Int("spatial_merge_size", 2), v.Int("temporal_patch_size", 2),
                v.Int("window_size", 112), v.IntArray("fullatt_block_indexes", [7, 15, 23, 31]), v.Int("tokens_per_second", 4),
                VisionRopeTheta(v));
        }
        else
        {
            int embed = v.Int("embed_dim", 1280);
            vision = new QwenVisionConfig(v.Int("depth", 32), embed, v.Int("hidden_size", 3584), v.Int("num_heads", 16),
                (int)(embed * v.Double("mlp_ratio", 4)), v.String("hidden_act", "quick_gelu"), v.IntOrNull("in_channels") ?? v.Int("in_chans", 3),
                v.IntOrNull("patch_size") ?? v.Int("spatial_patch_size", 14), v.Int("spatial_merge_size", 2), v.Int("temporal_patch_size", 2),
                0, [], 0, VisionRopeTheta(v));
        }
        if (vision.NumHeads <= 0 || vision.EmbedDim % vision.NumHeads != 0 || vision.HeadDim % 4 != 0)
            throw new ConfigException(c.File, "vision_config.num_heads",
                $"the vision width {vision.EmbedDim} must split into num_heads {vision.NumHeads} heads whose size is a multiple of 4 (2-D rotary)");
        if (q25 && vision.WindowSize / vision.SpatialMergeSize / vision.PatchSize <= 0)
            throw new ConfigException(c.File, "vision_config.window_size",
                $"window_size {vision.WindowSize} is smaller than one merged patch ({vision.SpatialMergeSize * vision.PatchSize} px)");
        int half = text.HeadDim / 2;
        if (text.Rope.MropeSection!.Length != 3 || text.Rope.MropeSection.Sum() != half || text.Rope.MropeSection.Any(x => x < 0))
            throw new ConfigException(c.File, t is null ? "rope_scaling.mrope_section" : "text_config.rope_parameters.mrope_section",
                $"mrope_section [{string.Join(", ", text.Rope.MropeSection)}] must be three parts summing to head_dim/2 = {half}");
        return Base<QwenVLConfig>(c, text) with
        {
            Vision = vision,
            ImageTokenId = c.Int("image_token_id", 151655),
            VideoTokenId = c.Int("video_token_id", 151656),
            VisionStartTokenId = c.Int("vision_start_token_id", 151652),
            VisionEndTokenId = c.Int("vision_end_token_id", 151653),
        };
    }
}

/// <summary>InstructBLIP Q-Former settings (BERT-style).</summary>
public sealed record QFormerConfig(int VocabSize, int HiddenSize, int NumLayers, int NumHeads, int IntermediateSize, string HiddenAct,
    int MaxPositions, double LayerNormEps, int CrossAttentionFrequency, int EncoderHiddenSize, int PadTokenId);

/// <summary>InstructBLIP (<c>instructblip</c>) with a Llama/Vicuna decoder.</summary>
public sealed record InstructBlipConfig : ModelConfig
{
    /// <summary>The BLIP vision model.</summary>
    public VitConfig Vision { get; init; } = null!;
    /// <summary>The Q-Former.</summary>
    public QFormerConfig QFormer { get; init; } = null!;
    /// <summary>Learned query tokens, i.e. image tokens per image (32 by default).</summary>
    public int NumQueryTokens { get; init; }
    /// <summary>The image placeholder id (image_token_index / image_token_id); null for older checkpoints, which are not supported for prompts.</summary>
    public int? ImageTokenId { get; init; }

    internal static InstructBlipConfig Read(JsonConfig c)
    {
        var t = c.ObjectOrEmpty("text_config");
        var ttype = t.String("model_type", "opt");
        if (ttype != "llama")
            throw new ConfigException(c.File, "text_config.model_type", $"InstructBLIP with a '{ttype}' language model is not supported (only Llama/Vicuna; Flan-T5 and OPT variants are left out)");
        var q = c.ObjectOrEmpty("qformer_config");
        return Base<InstructBlipConfig>(c, TextConfig.Read(t, TextConfig.Llama, "llama")) with
        {
            Vision = VitConfig.Read(c.ObjectOrEmpty("vision_config"), "instructblip_vision_model", 1408, 6144, 39, 16, 224, 14, "gelu", 1e-6),
            QFormer = new QFormerConfig(q.Int("vocab_size", 30522), q.Int("hidden_size", 768), q.Int("num_hidden_layers", 12), q.Int("num_attention_heads", 12),
                q.Int("intermediate_size", 3072), q.String("hidden_act", "gelu"), q.Int("max_position_embeddings", 512), q.Double("layer_norm_eps", 1e-12),
                q.Int("cross_attention_frequency", 2), q.Int("encoder_hidden_size", 1408), q.Int("pad_token_id", 0)),
            NumQueryTokens = c.Int("num_query_tokens", 32),
            ImageTokenId = c.IntOrNull("image_token_index") ?? c.IntOrNull("image_token_id"),
        };
    }
}

/// <summary>IDEFICS v1 perceiver resampler settings.</summary>
public sealed record PerceiverConfig(bool UseResampler, int NumLatents, int Depth, int NumHeads, int HeadDim, bool QkLayerNorms);

/// <summary>IDEFICS v1 (<c>idefics</c>): flat Llama text fields, gated cross-attention, decoupled embeddings.</summary>
public sealed record IdeficsConfig : ModelConfig
{
    /// <summary>The CLIP-style vision encoder.</summary>
    public VitConfig Vision { get; init; } = null!;
    /// <summary>The perceiver resampler.</summary>
    public PerceiverConfig Perceiver { get; init; } = null!;
    /// <summary>Extra token ids beyond the text vocabulary (decoupled embedding and lm_head rows).</summary>
    public int AdditionalVocabSize { get; init; }
    /// <summary>A gated cross-attention layer precedes every n-th decoder layer (n ≥ 1).</summary>
    public int CrossLayerInterval { get; init; }
    /// <summary>Whether the cross-attention normalises queries and keys.</summary>
    public bool QkLayerNorms { get; init; }
    /// <summary>"float" (one gate value per layer) or "vector" (one per hidden unit).</summary>
    public string AlphaType { get; init; } = "float";

    internal static IdeficsConfig Read(JsonConfig c)
    {
        var text = TextConfig.Read(c, TextConfig.Idefics, "idefics");
        // IdeficsConfig's Python defaults for the special tokens (pad 0, bos 1, eos 2) when the file omits them
        text = text with
        {
            ModelType = "idefics", PadTokenId = text.PadTokenId ?? 0, BosTokenId = text.BosTokenId ?? 1,
            EosTokenIds = text.EosTokenIds.Length > 0 ? text.EosTokenIds : [2],
        };
        var p = c.ObjectOrEmpty("perceiver_config");
        var alpha = c.String("alpha_type", "float");
        if (alpha is not ("float" or "vector"))
            throw new ConfigException(c.File, "alpha_type", $"expected \"float\" or \"vector\", found \"{alpha}\"");
        int interval = c.Int("cross_layer_interval", 1);
        if (interval <= 0)
            throw new ConfigException(c.File, "cross_layer_interval", $"must be positive, found {interval}");
        return Base<IdeficsConfig>(c, text) with
        {
            Vision = VitConfig.Read(c.ObjectOrEmpty("vision_config"), "idefics_vision", 768, 5120, 32, 16, 224, 14, "gelu", 1e-5, hiddenKey: "embed_dim"),
            // IdeficsModel decides on the root field alone (perceiver_config.use_resampler is not read by the model)
            Perceiver = new PerceiverConfig(c.Bool("use_resampler", false), p.Int("resampler_n_latents", 64),
                p.Int("resampler_depth", 6), p.Int("resampler_n_heads", 16), p.Int("resampler_head_dim", 96), p.Bool("qk_layer_norms_perceiver", false)),
            AdditionalVocabSize = c.Int("additional_vocab_size", 0),
            CrossLayerInterval = interval,
            QkLayerNorms = c.Bool("qk_layer_norms", false),
            AlphaType = alpha,
        };
    }
}

/// <summary>Idefics3 / SmolVLM (<c>idefics3</c>).</summary>
public sealed record Idefics3Config : ModelConfig
{
    /// <summary>The SigLIP-style vision transformer.</summary>
    public VitConfig Vision { get; init; } = null!;
    /// <summary>Pixel-shuffle factor of the connector: image tokens per tile shrink by its square (2 by default).</summary>
    public int ScaleFactor { get; init; }
    /// <summary>The <c>&lt;image&gt;</c> id (128257 by default).</summary>
    public int ImageTokenId { get; init; }

    internal static Idefics3Config Read(JsonConfig c)
    {
        // Idefics3Config builds its default LlamaConfig with rms_norm_eps=1e-5 only when text_config is absent;
        // a text_config dict without the field gets LlamaConfig's own default, 1e-6.
        var defaults = c.Object("text_config") is null ? TextConfig.Llama with { Eps = 1e-5 } : TextConfig.Llama;
        var text = TextConfig.Read(c.ObjectOrEmpty("text_config"), defaults, "llama", c);
        return Base<Idefics3Config>(c, text) with
        {
            Vision = VitConfig.Read(c.ObjectOrEmpty("vision_config"), "idefics3_vision", 1152, 3072, 12, 16, 224, 32, "gelu_pytorch_tanh", 1e-6),
            ScaleFactor = c.Int("scale_factor", 2),
            ImageTokenId = c.Int("image_token_id", 128257),
        };
    }
}
