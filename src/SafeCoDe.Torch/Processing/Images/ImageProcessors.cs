using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// Picks and configures the image processor of a checkpoint: the family comes from config.json's model_type, the
/// settings from preprocessor_config.json (whose image_processor_type, when present, must be the class HF uses for
/// that family; the "Fast"/"Pil" variants of a class are accepted, and produce what the torchvision backend of
/// transformers 5 produces).
/// </summary>
public static class ImageProcessors
{
    /// <summary>The HF image-processor classes accepted per model_type (the first is the default).</summary>
    public static IReadOnlyDictionary<string, string[]> Classes =>
        ModelFamilies.Registered.ToDictionary(t => t, t => ModelFamilies.Get(t).ImageProcessorClasses.ToArray());

    /// <summary>The processor for an opened model folder (its preprocessor_config.json is required).</summary>
    public static IImageProcessor For(ModelDirectory dir)
    {
        var pre = dir.PreprocessorConfig
                  ?? throw new ConfigException(Path.Combine(dir.Dir, "preprocessor_config.json"), null, "file not found: the model folder has no preprocessor_config.json");
        return For(dir.Config, pre);
    }

    /// <summary>The processor for a model folder, reading only config.json and preprocessor_config.json (no weights).</summary>
    public static IImageProcessor ForFolder(string dir)
    {
        var config = ModelConfig.Load(dir);
        return For(config, JsonConfig.Load(Path.Combine(dir, "preprocessor_config.json")));
    }

    /// <summary>The processor for a parsed config and preprocessor config.</summary>
    public static IImageProcessor For(ModelConfig config, JsonConfig preprocessor)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(preprocessor);
        var family = ModelFamilies.TryGet(config.ModelType);
        var accepted = family?.ImageProcessorClasses
            ?? throw new ConfigException(config.ConfigPath, "model_type", $"no image processor for model_type '{config.ModelType}'");
        var cls = ClassName(preprocessor) ?? accepted[0];
        if (!accepted.Contains(cls))
            throw new ConfigException(preprocessor.File, "image_processor_type",
                $"'{cls}' is not an image processor for model_type '{config.ModelType}' (expected {string.Join(" or ", accepted)})");
        return family!.CreateImageProcessor(config, preprocessor, cls);
    }

    /// <summary>image_processor_type (or the older feature_extractor_type) without the Fast / Pil suffix.</summary>
    private static string? ClassName(JsonConfig pre)
    {
        var name = pre.StringOrNull("image_processor_type");
        if (name is null)
        {
            name = pre.StringOrNull("feature_extractor_type");
            if (name is not null && name.EndsWith("FeatureExtractor", StringComparison.Ordinal))
                name = name[..^"FeatureExtractor".Length] + "ImageProcessor";
        }
        if (name is null) return null;
        foreach (var suffix in new[] { "Fast", "Pil" })
            if (name.EndsWith(suffix, StringComparison.Ordinal)) name = name[..^suffix.Length];
        return name;
    }
}
