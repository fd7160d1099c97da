using System.Text.Json;
using SafeCoDe.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Checkpoints;

/// <summary>
/// Where a canonical tensor comes from: one safetensors entry, or (InstructBLIP's Hub layout) the fused q/k/v bias
/// assembled from separate <c>q_bias</c> and <c>v_bias</c> with a zero k third.
/// </summary>
public sealed record TensorSource(string Name, long[] Shape, SafetensorsDType DType, IReadOnlyList<(SafetensorsFile File, SafetensorsEntry Entry)> Parts)
{
    /// <summary>Number of elements of the canonical tensor.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    /// <summary>True when the tensor is assembled from separate q_bias / v_bias entries.</summary>
    public bool IsFusedQkvBias => Parts.Count == 2;

    /// <summary>Reads the tensor (floating types converted to <paramref name="floatType"/>) onto <paramref name="device"/>.</summary>
    public Tensor Read(ScalarType? floatType = null, Device? device = null)
    {
        if (Parts.Count == 1) return Parts[0].File.Read(Parts[0].Entry, floatType, device);
        using var q = Parts[0].File.Read(Parts[0].Entry, floatType, device);
        using var v = Parts[1].File.Read(Parts[1].Entry, floatType, device);
        using var k = zeros_like(q);
        return cat([q, k, v], 0);
    }
}

/// <summary>
/// A model folder as the Hub ships it: config.json, model.safetensors or shards with model.safetensors.index.json,
/// and optional generation_config.json / preprocessor_config.json. Tensor names of either layout (Hub files,
/// transformers ≥4.52 names) are mapped to one canonical set per family: the module paths of this engine.
/// </summary>
public sealed class ModelDirectory
{
    /// <summary>Absolute path of the folder.</summary>
    public string Dir { get; }
    /// <summary>The typed config.json.</summary>
    public ModelConfig Config { get; }
    /// <summary>The weight files (shards in file-name order), headers validated.</summary>
    public IReadOnlyList<SafetensorsFile> Files { get; }
    /// <summary>Canonical name → source.</summary>
    public IReadOnlyDictionary<string, TensorSource> Tensors { get; }
    /// <summary>generation_config.json, or null when the folder has none.</summary>
    public JsonConfig? GenerationConfig { get; }
    /// <summary>preprocessor_config.json, or null when the folder has none (the image processor then uses the family's defaults).</summary>
    public JsonConfig? PreprocessorConfig { get; }
    /// <summary>Path of model.safetensors.index.json for sharded checkpoints, else null.</summary>
    public string? IndexPath { get; }

    private ModelDirectory(string dir, ModelConfig config, IReadOnlyList<SafetensorsFile> files, Dictionary<string, TensorSource> tensors,
        JsonConfig? gen, JsonConfig? pre, string? index)
    {
        Dir = dir; Config = config; Files = files; Tensors = tensors; GenerationConfig = gen; PreprocessorConfig = pre; IndexPath = index;
    }

    /// <summary>Opens and validates a model folder (configs parsed, every safetensors header checked, names mapped).</summary>
    public static ModelDirectory Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new CheckpointException(dir, null, "model directory not found");
        dir = Path.GetFullPath(dir);
        Runtime.ModelFolder.CheckLinks(dir);
        var config = ModelConfig.Load(dir);
        var (files, index) = OpenWeights(dir);
        var family = ModelFamilies.Of(config);
        ConfigLimits.CheckAgainstWeights(config, family, files);
        var tensors = MapNames(family, files);
        var gen = File.Exists(Path.Combine(dir, "generation_config.json")) ? JsonConfig.Load(Path.Combine(dir, "generation_config.json")) : null;
        var pre = File.Exists(Path.Combine(dir, "preprocessor_config.json")) ? JsonConfig.Load(Path.Combine(dir, "preprocessor_config.json")) : null;
        return new ModelDirectory(dir, config, files, tensors, gen, pre, index);
    }

    private static (List<SafetensorsFile>, string?) OpenWeights(string dir)
    {
        var index = Path.Combine(dir, "model.safetensors.index.json");
        var single = Path.Combine(dir, "model.safetensors");
        if (File.Exists(index))
        {
            var j = JsonConfig.Load(index);
            var map = j.Object("weight_map") ?? throw new ConfigException(index, "weight_map", "required field is missing");
            var byFile = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            foreach (var (name, file) in map.StringEntries())
            {
                if (file.Contains('/') || file.Contains('\\') || file == "..")
                    throw new ConfigException(index, "weight_map." + name, $"shard name '{file}' must be a plain file name in the model folder");
                (byFile.TryGetValue(file, out var l) ? l : byFile[file] = []).Add(name);
            }
            var files = new List<SafetensorsFile>();
            foreach (var (file, names) in byFile.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var path = Path.Combine(dir, file);
                if (!File.Exists(path)) throw new CheckpointException(index, "weight_map", $"shard '{file}' is listed but does not exist");
                var st = SafetensorsFile.Open(path);
                foreach (var n in names)
                    if (!st.Entries.ContainsKey(n))
                        throw new SafetensorsFormatException(path, n, $"tensor is mapped to this shard by {Path.GetFileName(index)} but the shard does not contain it");
                files.Add(st);
            }
            return (files, index);
        }
        if (File.Exists(single)) return ([SafetensorsFile.Open(single)], null);
        var any = Directory.GetFiles(dir, "*.safetensors").Where(f => !Path.GetFileName(f).StartsWith("reference")).OrderBy(f => f).ToList();
        if (any.Count == 0) throw new CheckpointException(dir, null, "no model.safetensors or model.safetensors.index.json in the model directory");
        return (any.Select(SafetensorsFile.Open).ToList(), null);
    }

    /// <summary>Maps a file's tensor name to this engine's canonical name for <paramref name="family"/>.</summary>
    public static string Canonical(string family, string name) =>
        ModelFamilies.TryGet(family) is { } f ? Canonical(f, name) : name;

    private static string Canonical(IModelFamily family, string name)
    {
        foreach (var rule in family.TensorRenames)
            if (rule.Pattern.IsMatch(name)) return rule.Pattern.Replace(name, rule.Replacement, 1);
        return name;
    }

    private static Dictionary<string, TensorSource> MapNames(IModelFamily family, List<SafetensorsFile> files)
    {
        var result = new Dictionary<string, TensorSource>(StringComparer.Ordinal);
        var origin = new Dictionary<string, string>(StringComparer.Ordinal);
        var qv = new Dictionary<string, (SafetensorsFile, SafetensorsEntry)>(StringComparer.Ordinal);
        foreach (var f in files)
            foreach (var e in f.Entries.Values)
            {
                var canon = Canonical(family, e.Name);
                if (family.SplitsQkvBias && (canon.EndsWith(".self_attn.q_bias") || canon.EndsWith(".self_attn.v_bias")))
                {
                    qv[canon] = (f, e);
                    continue;
                }
                if (origin.TryGetValue(canon, out var first))
                    throw new SafetensorsFormatException(f.Path, e.Name, $"maps to '{canon}', which '{first}' already provides (both layouts in one checkpoint?)");
                origin[canon] = e.Name;
                result[canon] = new TensorSource(canon, e.Shape, e.DType, [(f, e)]);
            }
        // InstructBLIP Hub layout: fuse q_bias + (zero k) + v_bias into the qkv bias the attention uses.
        foreach (var (name, q) in qv.Where(kv => kv.Key.EndsWith(".q_bias")))
        {
            var stem = name[..^"q_bias".Length];
            if (!qv.TryGetValue(stem + "v_bias", out var v))
                throw new SafetensorsFormatException(q.Item1.Path, q.Item2.Name, "has no matching v_bias");
            if (!q.Item2.Shape.SequenceEqual(v.Item2.Shape) || q.Item2.Shape.Length != 1)
                throw new SafetensorsFormatException(v.Item1.Path, v.Item2.Name, "shape differs from its q_bias");
            var canon = stem + "qkv.bias";
            if (result.ContainsKey(canon))
                throw new SafetensorsFormatException(q.Item1.Path, q.Item2.Name, $"the checkpoint has both q_bias/v_bias and '{canon}'");
            result[canon] = new TensorSource(canon, [q.Item2.Shape[0] * 3], q.Item2.DType, [q, v]);
        }
        foreach (var name in qv.Keys.Where(k => k.EndsWith(".v_bias")))
            if (!qv.ContainsKey(name[..^"v_bias".Length] + "q_bias"))
                throw new SafetensorsFormatException(qv[name].Item1.Path, qv[name].Item2.Name, "has no matching q_bias");
        return result;
    }

    /// <summary>Which part of the model a canonical tensor belongs to (for reports).</summary>
    public static string Component(string family, string canonical) =>
        ModelFamilies.TryGet(family)?.Component(canonical) ?? ModelComponents.Of(canonical);

    /// <summary>
    /// The checkpoint's end-of-sequence ids: generation_config.json's <c>eos_token_id</c> when it has one (what HF's
    /// generate uses), else config.json's.
    /// </summary>
    public long[] EosTokenIds => GenerationConfig is { } g && g.Has("eos_token_id")
        ? g.IntOrIntArray("eos_token_id", []).Select(i => (long)i).ToArray()
        : Config.Text.EosTokenIds.Select(i => (long)i).ToArray();

    /// <summary>Total bytes of the weight files.</summary>
    public long WeightBytes => Files.Sum(f => f.FileLength);
}
