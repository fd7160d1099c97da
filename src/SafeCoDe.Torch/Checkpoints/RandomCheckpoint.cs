using SafeCoDe.Torch.Runtime;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Checkpoints;

/// <summary>Options for <see cref="RandomCheckpoint.Write"/>.</summary>
public sealed record RandomCheckpointOptions
{
    /// <summary>Base seed; each tensor's generator is seeded from it and the tensor's name, so a tensor does not depend on the others.</summary>
    public long Seed { get; init; }
    /// <summary>Storage dtype of the weights.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>Scale of weight matrices relative to 1/√fan_in (the fixtures use 1.5).</summary>
    public double InitScale { get; init; } = 1.5;
    /// <summary>Split into shards with an index when the weights exceed this many bytes (0: one file).</summary>
    public long ShardBytes { get; init; }
    /// <summary>A folder whose tokenizer files (tokenizer.json, tokenizer.model, vocab.json, merges.txt, *config.json of the tokenizer, qformer_tokenizer/) are copied.</summary>
    public string? TokenizerDir { get; init; }
    /// <summary>A preprocessor_config.json to copy; default: the family's default settings.</summary>
    public string? PreprocessorConfig { get; init; }
    /// <summary>Told (bytes drawn so far, total bytes) after each tensor, on the writing thread.</summary>
    public IProgress<(long bytesDone, long bytesTotal)>? Progress { get; init; }
}

/// <summary>
/// Writes a random-weight checkpoint of any supported family for a config.json, in the Hub layout (tensor names as
/// the Hub stores them), with generation_config.json, a preprocessor config and optional tokenizer files: for tests,
/// for the demo default in weights/, and for benchmarks at real shapes. Every parameter is random and non-trivial
/// (biases, norms, gates), drawn one tensor at a time, so host memory stays bounded by one tensor.
/// </summary>
public static class RandomCheckpoint
{
    private static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.json", "chat_template.jinja"];

    /// <summary>Writes the checkpoint for the config at <paramref name="configPath"/> into <paramref name="outDir"/> (created if needed).</summary>
    public static void Write(string configPath, string outDir, RandomCheckpointOptions? options = null)
    {
        var o = options ?? new RandomCheckpointOptions();
        var config = ModelConfig.Load(configPath);
        Directory.CreateDirectory(outDir);

        // parameter names and shapes from the module itself (meta: no memory), then drawn one by one
        var (module, _) = Backbones.Create(config, new ParamFactory(torch.META, o.DType));
        List<(string name, long[] shape)> parameters;
        using (module) parameters = module.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();

        var specs = new List<(TensorSpec spec, Func<Tensor> make)>();
        foreach (var (name, shape) in parameters)
        {
            foreach (var (hubName, hubShape, part) in ModelFamilies.Of(config).HubTensors(name, shape))
            {
                string n = name; int which = part;
                specs.Add((new TensorSpec(hubName, o.DType, hubShape), () => Draw(n, shape, which, o)));
            }
        }
        WriteShards(outDir, specs, o);

        File.Copy(configPath, Path.Combine(outDir, "config.json"), overwrite: true);
        WriteGenerationConfig(config, Path.Combine(outDir, "generation_config.json"));
        if (o.PreprocessorConfig is not null) File.Copy(o.PreprocessorConfig, Path.Combine(outDir, "preprocessor_config.json"), overwrite: true);
        else File.WriteAllText(Path.Combine(outDir, "preprocessor_config.json"), DefaultPreprocessorConfig(config).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (o.TokenizerDir is not null) CopyTokenizer(o.TokenizerDir, outDir);
    }

    /// <summary>The fixtures' scheme: gates 0.5+U, latents/queries 0.5·N, matrices N·scale/√fan_in, biases 0.1·N, norm weights 1+0.2·N.</summary>
    private static Tensor Draw(string name, long[] shape, int part, RandomCheckpointOptions o)
    {
        using var scope = NewDisposeScope();
        // one generator per tensor, seeded from (seed, name): the weights do not depend on write order or sharding
        using var gen = new torch.Generator(Mix((ulong)o.Seed, name));
        var last = name.Split('.')[^1];
        Tensor t;
        if (last.Contains("alpha")) t = rand(shape, generator: gen).PlusValue(0.5);
        else if (name.Contains("query_tokens") || last == "latents") t = randn(shape, generator: gen).Times(0.5);
        else if (shape.Length >= 2) t = randn(shape, generator: gen).Times(o.InitScale / Math.Sqrt(Math.Max(1, shape.Skip(1).Aggregate(1L, (a, b) => a * b))));
        else if (last.EndsWith("bias")) t = randn(shape, generator: gen).Times(0.1);
        else if (last == "weight") t = randn(shape, generator: gen).Times(0.2).PlusValue(1.0);
        else t = randn(shape, generator: gen).Times(0.5);
        if (part >= 0) t = t.narrow(0, part * shape[0] / 3, shape[0] / 3);
        else if (name.EndsWith(".self_attn.qkv.bias")) t.narrow(0, shape[0] / 3, shape[0] / 3).zero_(); // k third zero (Hub InstructBLIP)
        return t.to(o.DType).contiguous().MoveToOuterDisposeScope();
    }

    private static ulong Mix(ulong seed, string name)
    {
        ulong h = 14695981039346656037UL ^ seed;
        foreach (var ch in name) { h ^= ch; h *= 1099511628211UL; }
        return h & 0x7FFF_FFFF_FFFF_FFFFUL;
    }

    private static void WriteShards(string outDir, List<(TensorSpec spec, Func<Tensor> make)> specs, RandomCheckpointOptions o)
    {
        long Bytes(TensorSpec s) => s.Shape.Aggregate(1L, (a, b) => a * b) * SafetensorsFile.ElementSize(SafetensorsWriter.DTypeOf(s.DType));
        long total = specs.Sum(s => Bytes(s.spec));
        long done = 0;
        var makers = specs.ToDictionary(s => s.spec.Name, s => (Func<Tensor>)(() =>
        {
            var t = s.make();
            done += Bytes(s.spec);
            o.Progress?.Report((done, total));
            return t;
        }));
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        if (o.ShardBytes <= 0 || total <= o.ShardBytes)
        {
            SafetensorsWriter.WriteStreaming(Path.Combine(outDir, "model.safetensors"), specs.Select(s => s.spec).ToList(), s => makers[s.Name](), meta);
            return;
        }
        var shards = new List<List<TensorSpec>> { new() };
        long current = 0;
        foreach (var (spec, _) in specs)
        {
            if (current > 0 && current + Bytes(spec) > o.ShardBytes) { shards.Add([]); current = 0; }
            shards[^1].Add(spec);
            current += Bytes(spec);
        }
        var map = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            var file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            SafetensorsWriter.WriteStreaming(Path.Combine(outDir, file), shards[i], s => makers[s.Name](), meta);
            foreach (var s in shards[i]) map[s.Name] = file;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = map };
        File.WriteAllText(Path.Combine(outDir, "model.safetensors.index.json"), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static void WriteGenerationConfig(ModelConfig c, string path)
    {
        var g = new JsonObject();
        if (c.Text.BosTokenId is { } bos) g["bos_token_id"] = bos;
        if (c.Text.EosTokenIds.Length == 1) g["eos_token_id"] = c.Text.EosTokenIds[0];
        else if (c.Text.EosTokenIds.Length > 1) g["eos_token_id"] = new JsonArray(c.Text.EosTokenIds.Select(e => (JsonNode)e).ToArray());
        if (c.Text.PadTokenId is { } pad) g["pad_token_id"] = pad;
        File.WriteAllText(path, g.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    internal static readonly double[] ClipMean = [0.48145466, 0.4578275, 0.40821073];
    internal static readonly double[] ClipStd = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>A JSON array of numbers (preprocessor configs).</summary>
    internal static JsonArray Floats(params double[] v) => new(v.Select(x => (JsonNode)x).ToArray());

    /// <summary>The family's default image-processor settings for the config's vision geometry.</summary>
    public static JsonObject DefaultPreprocessorConfig(ModelConfig c) => ModelFamilies.TryGet(c.ModelType)?.DefaultPreprocessorConfig(c)
        ?? throw new NotSupportedException($"no default preprocessor config for {c.ModelType}");

    private static void CopyTokenizer(string from, string outDir)
    {
        int copied = 0;
        foreach (var f in TokenizerFiles)
        {
            var src = Path.Combine(from, f);
            if (File.Exists(src)) { File.Copy(src, Path.Combine(outDir, f), overwrite: true); copied++; }
        }
        var q = Path.Combine(from, "qformer_tokenizer");
        if (Directory.Exists(q))
        {
            var dst = Path.Combine(outDir, "qformer_tokenizer");
            Directory.CreateDirectory(dst);
            foreach (var f in Directory.GetFiles(q)) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)), overwrite: true);
            copied++;
        }
        if (copied == 0) throw new CheckpointException(from, null, "no tokenizer files (tokenizer.json, tokenizer.model, vocab.json + merges.txt, …) in this folder");
    }
}
