namespace SafeCoDe.Torch.Checkpoints;

// Lives in the family folder; the namespace stays Checkpoints so existing callers keep compiling.
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
