namespace SafeCoDe.Torch.Checkpoints;

// Lives in the family folder; the namespace stays Checkpoints so existing callers keep compiling.
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
        text = text with { AttentionBias = true, OutputBias = false }; // Qwen2 attention always has q/k/v biases, never an o_proj bias
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
