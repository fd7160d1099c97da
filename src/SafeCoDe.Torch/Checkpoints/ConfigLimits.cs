using System.Text.Json;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Torch.Checkpoints;

/// <summary>
/// Ranges for config values, checked as each value is read (so nothing is allocated from an absurd value), and a
/// cross-check of the config against the checkpoint's tensors before the model is built. The ranges are far wider
/// than any published checkpoint of the supported families; they exist to stop values such as hidden_size 1e9,
/// 10^6 layers, patch_size 0, rope_theta 0 or an 8000-pixel preprocessor size.
/// </summary>
public static class ConfigLimits
{
    private static int Vocab => InputLimits.Current.MaxVocabSize;

    /// <summary>Integer fields by name (the last part of the path; array elements use the array's name).</summary>
    private static readonly Dictionary<string, (long Min, Func<long> Max)> Ints = new(StringComparer.Ordinal)
    {
        ["hidden_size"] = (1, () => 1 << 17), ["intermediate_size"] = (1, () => 1 << 19), ["embed_dim"] = (1, () => 1 << 17),
        ["encoder_hidden_size"] = (1, () => 1 << 17), ["projector_hidden_size"] = (1, () => 1 << 17),
        ["num_hidden_layers"] = (1, () => 1024), ["num_layers"] = (1, () => 1024), ["depth"] = (1, () => 1024),
        ["num_attention_heads"] = (1, () => 4096), ["num_key_value_heads"] = (1, () => 4096), ["num_heads"] = (1, () => 4096),
        ["head_dim"] = (1, () => 4096), ["vocab_size"] = (1, () => Vocab), ["additional_vocab_size"] = (0, () => Vocab),
        ["max_position_embeddings"] = (1, () => 1 << 21),
        ["image_size"] = (1, () => 8192), ["patch_size"] = (1, () => 1024), ["spatial_patch_size"] = (1, () => 1024),
        ["temporal_patch_size"] = (1, () => 16), ["spatial_merge_size"] = (1, () => 64), ["scale_factor"] = (1, () => 64),
        ["num_channels"] = (1, () => 16), ["in_channels"] = (1, () => 16), ["in_chans"] = (1, () => 16),
        ["num_query_tokens"] = (1, () => 4096), ["image_seq_length"] = (0, () => 1 << 20), ["window_size"] = (1, () => 1 << 16),
        ["cross_attention_frequency"] = (1, () => 1024), ["cross_layer_interval"] = (1, () => 1024),
        ["resampler_n_latents"] = (1, () => 4096), ["resampler_depth"] = (1, () => 64), ["resampler_n_heads"] = (1, () => 4096),
        ["resampler_head_dim"] = (1, () => 4096),
        ["image_grid_pinpoints"] = (1, () => 4096), ["mrope_section"] = (0, () => 4096), ["fullatt_block_indexes"] = (0, () => 1024),
        // Qwen's transformers-5 layout stores min/max pixels in shortest_edge/longest_edge, so sizes allow pixel counts
        // here; what a preprocessor actually resizes to is bounded by InputLimits.MaxProcessedPixels
        ["shortest_edge"] = (1, () => 1 << 26), ["longest_edge"] = (1, () => 1 << 26), ["height"] = (1, () => 1 << 16), ["width"] = (1, () => 1 << 16),
        ["max_height"] = (1, () => 1 << 16), ["max_width"] = (1, () => 1 << 16), ["crop_size"] = (1, () => 1 << 16), ["size"] = (1, () => 1 << 26),
        ["max_image_size"] = (1, () => 1 << 16), ["min_pixels"] = (1, () => 1 << 26), ["max_pixels"] = (1, () => 1 << 26),
        ["image_token_index"] = (-1, () => Vocab), ["image_token_id"] = (-1, () => Vocab), ["video_token_id"] = (-1, () => Vocab),
        ["vision_start_token_id"] = (-1, () => Vocab), ["vision_end_token_id"] = (-1, () => Vocab), ["vision_token_id"] = (-1, () => Vocab),
        ["bos_token_id"] = (-1, () => Vocab), ["eos_token_id"] = (-1, () => Vocab), ["pad_token_id"] = (-1, () => Vocab),
        ["decoder_start_token_id"] = (-1, () => Vocab),
    };

    /// <summary>Number fields by name: inclusive ranges.</summary>
    private static readonly Dictionary<string, (double Min, double Max)> Doubles = new(StringComparer.Ordinal)
    {
        ["rope_theta"] = (1, 1e12), ["factor"] = (1e-6, 1e6), ["rms_norm_eps"] = (0, 1), ["layer_norm_eps"] = (0, 1),
        ["image_std"] = (1e-6, 1e6), ["image_mean"] = (-1e6, 1e6), ["rescale_factor"] = (1e-12, 1e6),
        ["initializer_range"] = (0, 1e3), ["attention_dropout"] = (0, 1), ["dropout"] = (0, 1),
    };

    /// <summary>The last name of a dotted / indexed path ("a.b[3][1]" → "b").</summary>
    internal static string Leaf(string path)
    {
        int br = path.IndexOf('[');
        if (br >= 0) path = path[..br];
        int dot = path.LastIndexOf('.');
        return dot >= 0 ? path[(dot + 1)..] : path;
    }

    /// <summary>Checks an integer field read from <paramref name="file"/>.</summary>
    /// <exception cref="ConfigException">Out of range.</exception>
    public static int CheckInt(string file, string path, int value)
    {
        if (Ints.TryGetValue(Leaf(path), out var r))
        {
            long max = r.Max();
            if (value < r.Min || value > max)
                throw new ConfigException(file, path, $"{value} is out of the accepted range [{r.Min}, {max}] (ConfigLimits / InputLimits)");
        }
        return value;
    }

    /// <summary>Checks a number field read from <paramref name="file"/>: finite, and in range for known names.</summary>
    /// <exception cref="ConfigException">Not finite or out of range.</exception>
    public static double CheckDouble(string file, string path, double value)
    {
        if (!double.IsFinite(value)) throw new ConfigException(file, path, "must be a finite number");
        if (Doubles.TryGetValue(Leaf(path), out var r) && (value < r.Min || value > r.Max))
            throw new ConfigException(file, path, $"{value} is out of the accepted range [{r.Min}, {r.Max}] (ConfigLimits)");
        return value;
    }

    /// <summary>
    /// The language model the config describes must fit the weights that are there: its parameter count (a lower
    /// bound: embeddings and decoder layers only) may not exceed the checkpoint's by more than half, and the vocabulary
    /// and hidden size must match the input embedding's shape when that tensor is found. Runs before anything is allocated.
    /// </summary>
    /// <exception cref="ConfigException">The config and the tensors disagree.</exception>
    public static void CheckAgainstWeights(ModelConfig config, IReadOnlyList<SafetensorsFile> files) =>
        CheckAgainstWeights(config, ModelFamilies.Of(config), files);

    internal static void CheckAgainstWeights(ModelConfig config, Models.IModelFamily family, IReadOnlyList<SafetensorsFile> files)
    {
        var t = config.Text;
        long have = 0;
        SafetensorsEntry? embed = null;
        foreach (var f in files)
            foreach (var e in f.Entries.Values)
            {
                long n = 1;
                foreach (var d in e.Shape) n = d == 0 ? 0 : Math.Min(n * d, long.MaxValue / Math.Max(1, d));
                have = have > long.MaxValue - n ? long.MaxValue : have + n;
                if (embed is null && e.Name.EndsWith("embed_tokens.weight", StringComparison.Ordinal) && e.Shape.Length == 2) embed = e;
            }
        double h = t.HiddenSize, q = (double)t.NumHeads * t.HeadDim, kv = (double)t.NumKvHeads * t.HeadDim;
        double perLayer = h * q * 2 + h * kv * 2 + 3 * h * t.IntermediateSize;
        double want = t.NumLayers * perLayer + (double)t.VocabSize * h;
        if (want > have * 1.5 + 1e6)
            throw new ConfigException(config.ConfigPath, "text_config",
                $"describes a language model of at least {want:0.###e0} parameters, but the weight files hold {have:N0}: config.json does not belong to these weights");
        if (embed is not null && embed.Shape[1] != t.HiddenSize && family.EmbeddingWidthIsHiddenSize)
            throw new ConfigException(config.ConfigPath, "hidden_size",
                $"is {t.HiddenSize} but {embed.Name} has {embed.Shape[1]} columns");
    }
}

/// <summary>Strict JSON checks that System.Text.Json does not make.</summary>
public static class JsonStrict
{
    /// <summary>The path of the first key that appears twice in one object, or null.</summary>
    public static string? FindDuplicateKey(JsonElement e, string path = "", int depth = 0)
    {
        if (depth > 64) return null;
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject())
                {
                    var here = path.Length == 0 ? p.Name : path + "." + p.Name;
                    if (!seen.Add(p.Name)) return here;
                    if (FindDuplicateKey(p.Value, here, depth + 1) is { } d) return d;
                }
                return null;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var x in e.EnumerateArray())
                    if (FindDuplicateKey(x, $"{path}[{i++}]", depth + 1) is { } d) return d;
                return null;
            default: return null;
        }
    }
}
