namespace SafeCoDe.Torch.Checkpoints;

// Lives in the family folder; the namespace stays Checkpoints so existing callers keep compiling.
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
