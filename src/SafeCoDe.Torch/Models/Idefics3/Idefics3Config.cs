namespace SafeCoDe.Torch.Checkpoints;

// Lives in the family folder; the namespace stays Checkpoints so existing callers keep compiling.
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
