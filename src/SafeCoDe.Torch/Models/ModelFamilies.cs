using System.Collections.Concurrent;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Idefics;
using SafeCoDe.Torch.Models.Idefics3;
using SafeCoDe.Torch.Models.InstructBlip;
using SafeCoDe.Torch.Models.Llava;
using SafeCoDe.Torch.Models.Qwen;

namespace SafeCoDe.Torch.Checkpoints;

/// <summary>
/// The families this engine knows, by config <c>model_type</c>: the one table of <see cref="IModelFamily"/>
/// descriptors. Adding a family = its folder under <c>Models/</c> + one line in <see cref="BuiltIn"/> (or a call
/// to <see cref="Register"/> at run time).
/// </summary>
public static class ModelFamilies
{
    /// <summary>A <c>model_type</c> value of config.json.</summary>
    public const string Llava = "llava", LlavaNext = "llava_next", Qwen2VL = "qwen2_vl", Qwen25VL = "qwen2_5_vl",
        InstructBlip = "instructblip", Idefics = "idefics", Idefics3 = "idefics3";

    /// <summary>The built-in families, in this order.</summary>
    private static readonly IModelFamily[] BuiltIn =
    [
        new LlavaFamily(Llava),
        new LlavaFamily(LlavaNext),
        new QwenFamily(Qwen2VL),
        new QwenFamily(Qwen25VL),
        new InstructBlipFamily(),
        new IdeficsFamily(),
        new Idefics3Family(),
    ];

    /// <summary>Every built-in family, in this order.</summary>
    public static readonly IReadOnlyList<string> All = BuiltIn.Select(f => f.ModelType).ToArray();

    private static readonly ConcurrentDictionary<string, IModelFamily> Table = new(BuiltIn.ToDictionary(f => f.ModelType), StringComparer.Ordinal);
    private static readonly object Order = new();
    private static volatile string[] _registered = [.. All];

    /// <summary>The <c>model_type</c> of every registered family: the built-in ones, then those added with <see cref="Register"/>.</summary>
    public static IReadOnlyList<string> Registered => _registered;

    /// <summary>Adds (or replaces) a family at run time, e.g. a research backbone defined outside this library.</summary>
    public static void Register(IModelFamily family)
    {
        ArgumentNullException.ThrowIfNull(family);
        lock (Order)
        {
            Table[family.ModelType] = family;
            if (!_registered.Contains(family.ModelType)) _registered = [.. _registered, family.ModelType];
        }
    }

    /// <summary>The family of a <c>model_type</c>, or null when none is registered.</summary>
    public static IModelFamily? TryGet(string modelType) => Table.TryGetValue(modelType, out var f) ? f : null;

    /// <summary>The family of a <c>model_type</c>.</summary>
    /// <exception cref="NotSupportedException">No family is registered for it.</exception>
    public static IModelFamily Get(string modelType) => TryGet(modelType)
        ?? throw new NotSupportedException($"model_type '{modelType}' is not supported; supported: {string.Join(", ", Registered)}");

    /// <summary>The family of a parsed config.</summary>
    public static IModelFamily Of(ModelConfig config) => Get(config.ModelType);
}
