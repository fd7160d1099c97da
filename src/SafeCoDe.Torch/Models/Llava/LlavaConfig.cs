namespace SafeCoDe.Torch.Checkpoints;

// Lives in the family folder; the namespace stays Checkpoints so existing callers keep compiling.
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
