using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models;

/// <summary>Builds the backbone of a checkpoint folder. The family comes from <see cref="ModelFamilies"/>.</summary>
public static class Backbones
{
    /// <summary>Families with a backbone implementation: every registered family.</summary>
    public static IReadOnlySet<string> Supported => ModelFamilies.Registered.ToHashSet();

    /// <summary>
    /// Ids that only mark where images go (image/video placeholders known from the config). A model never needs to
    /// emit them; decoding bans them so a generated id is never mistaken for a placeholder.
    /// </summary>
    public static long[] PlaceholderTokenIds(ModelConfig config) => ModelFamilies.TryGet(config.ModelType)?.PlaceholderTokenIds(config) ?? [];

    /// <summary>Parses "float32|bfloat16|float16" (aliases fp32, bf16, fp16).</summary>
    public static ScalarType ParseDType(string text) => text.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" or "f16" or "half" => ScalarType.Float16,
        _ => throw new ArgumentException($"unknown dtype '{text}': expected float32, bfloat16 or float16"),
    };

    /// <summary>Loads a model folder onto <paramref name="device"/> in <paramref name="dtype"/> (weights converted on load).</summary>
    public static IBackbone Load(string dir, Device device, ScalarType dtype, IProgress<(int done, int total)>? progress = null)
        => Load(ModelDirectory.Open(dir), device, dtype, progress);

    /// <summary>Builds the family's module and loads the folder's weights into it (converted to <paramref name="dtype"/>), in eval mode.</summary>
    /// <exception cref="NotSupportedException">The family has no backbone.</exception>
    /// <exception cref="TensorMismatchException">The checkpoint's tensors do not match the model.</exception>
    public static IBackbone Load(ModelDirectory dir, Device device, ScalarType dtype, IProgress<(int done, int total)>? progress = null)
    {
        var built = Create(dir.Config, new ParamFactory(device, dtype));
        try
        {
            WeightLoader.Load(built.module, dir, built.tied, progress);
            built.module.eval();
            return (IBackbone)built.module;
        }
        catch
        {
            built.module.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds a family's module with uninitialised parameters (for loading, or for random-weight checkpoints and
    /// benchmarks). <c>tied</c> maps parameters that may be absent from a checkpoint to the one they copy.
    /// </summary>
    public static (nn.Module module, IReadOnlyDictionary<string, string> tied) Create(ModelConfig config, ParamFactory f)
    {
        var family = ModelFamilies.TryGet(config.ModelType) ?? throw new NotSupportedException(
            $"model_type '{config.ModelType}' has no backbone yet; supported: {string.Join(", ", Supported.Order())}");
        return family.CreateBackbone(config, f);
    }
}
