using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Checkpoints;

/// <summary>What <c>safecode inspect</c> reports about a model folder; needs no model code, only the files.</summary>
public sealed record InspectReport(
    string Dir, string Family, string[] Architectures, string ConfigLayout, string? TransformersVersion, string? DType,
    IReadOnlyDictionary<string, object> Text, IReadOnlyDictionary<string, object> Vision,
    int TensorCount, long ParameterCount, IReadOnlyDictionary<string, long> ParametersByComponent,
    IReadOnlyDictionary<string, int> TensorsByDType, IReadOnlyList<InspectFileEntry> Files, long TotalBytes,
    bool TiedEmbeddings, string? ImageProcessor)
{
    /// <summary>Builds the report from the opened folder's configs and safetensors headers (no tensor data is read).</summary>
    public static InspectReport From(ModelDirectory m)
    {
        var c = m.Config;
        var byComp = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var byType = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in m.Tensors.Values)
        {
            var comp = ModelDirectory.Component(c.ModelType, t.Name);
            byComp[comp] = byComp.GetValueOrDefault(comp) + t.Elements;
            foreach (var (_, e) in t.Parts) byType[e.DType.ToString()] = byType.GetValueOrDefault(e.DType.ToString()) + 1;
        }
        var text = new Dictionary<string, object>
        {
            ["model_type"] = c.Text.ModelType, ["layers"] = c.Text.NumLayers, ["hidden_size"] = c.Text.HiddenSize,
            ["intermediate_size"] = c.Text.IntermediateSize, ["attention_heads"] = c.Text.NumHeads, ["kv_heads"] = c.Text.NumKvHeads,
            ["head_dim"] = c.Text.HeadDim, ["vocab_size"] = c.Text.VocabSize, ["max_positions"] = c.Text.MaxPositions,
            ["rope"] = c.Text.Rope.MropeSection is { } s ? $"{c.Text.Rope.Type} theta={Num(c.Text.Rope.Theta)} mrope_section=[{string.Join(",", s)}]" : $"{c.Text.Rope.Type} theta={Num(c.Text.Rope.Theta)}",
            ["rms_norm_eps"] = c.Text.RmsNormEps, ["tie_word_embeddings"] = c.Text.TieWordEmbeddings,
        };
        var vision = new Dictionary<string, object>();
        switch (c)
        {
            case LlavaConfig l:
                AddVit(vision, l.Vision);
                vision["feature_layers"] = string.Join(",", l.VisionFeatureLayers);
                vision["select_strategy"] = l.VisionFeatureSelectStrategy;
                vision["image_token_id"] = l.ImageTokenId;
                vision["projector_act"] = l.ProjectorHiddenAct;
                if (l.ImageGridPinpoints is { } p) vision["grid_pinpoints"] = string.Join(" ", p.Select(x => $"{x[0]}x{x[1]}"));
                break;
            case QwenVLConfig q:
                vision["depth"] = q.Vision.Depth; vision["embed_dim"] = q.Vision.EmbedDim; vision["heads"] = q.Vision.NumHeads;
                vision["intermediate_size"] = q.Vision.IntermediateSize; vision["out_hidden_size"] = q.Vision.OutHiddenSize;
                vision["patch_size"] = q.Vision.PatchSize; vision["temporal_patch_size"] = q.Vision.TemporalPatchSize;
                vision["spatial_merge_size"] = q.Vision.SpatialMergeSize; vision["act"] = q.Vision.HiddenAct;
                if (q.IsQwen25) { vision["window_size"] = q.Vision.WindowSize; vision["fullatt_blocks"] = string.Join(",", q.Vision.FullAttBlockIndexes); }
                vision["image_token_id"] = q.ImageTokenId;
                break;
            case InstructBlipConfig b:
                AddVit(vision, b.Vision);
                vision["qformer_layers"] = b.QFormer.NumLayers; vision["qformer_hidden"] = b.QFormer.HiddenSize;
                vision["cross_attention_frequency"] = b.QFormer.CrossAttentionFrequency; vision["query_tokens"] = b.NumQueryTokens;
                if (b.ImageTokenId is { } it) vision["image_token_id"] = it;
                break;
            case IdeficsConfig i:
                AddVit(vision, i.Vision);
                vision["resampler"] = i.Perceiver.UseResampler ? $"{i.Perceiver.NumLatents} latents, depth {i.Perceiver.Depth}, {i.Perceiver.NumHeads}x{i.Perceiver.HeadDim}" : "off";
                vision["cross_layer_interval"] = i.CrossLayerInterval; vision["additional_vocab_size"] = i.AdditionalVocabSize;
                break;
            case Idefics3Config s3:
                AddVit(vision, s3.Vision);
                vision["scale_factor"] = s3.ScaleFactor; vision["image_token_id"] = s3.ImageTokenId;
                vision["tokens_per_tile"] = s3.Vision.NumPatches / (s3.ScaleFactor * s3.ScaleFactor);
                break;
        }
        bool tied = c.Text.TieWordEmbeddings && !byComp.ContainsKey("lm_head");
        return new InspectReport(m.Dir, c.ModelType, c.Architectures, c.ConfigLayout, c.TransformersVersion, c.DType, text, vision,
            m.Tensors.Count, byComp.Values.Sum(), byComp, byType,
            m.Files.Select(f => new InspectFileEntry(Path.GetFileName(f.Path), f.FileLength, f.Entries.Count)).ToList(), m.WeightBytes, tied,
            m.PreprocessorConfig?.StringOrNull("image_processor_type"));
    }

    private static void AddVit(Dictionary<string, object> v, VitConfig c)
    {
        v["model_type"] = c.ModelType; v["layers"] = c.NumLayers; v["hidden_size"] = c.HiddenSize; v["heads"] = c.NumHeads;
        v["intermediate_size"] = c.IntermediateSize; v["image_size"] = c.ImageSize; v["patch_size"] = c.PatchSize; v["act"] = c.HiddenAct;
    }

    private static string Num(double d) => d.ToString("G", CultureInfo.InvariantCulture);

    /// <summary>Indented JSON with snake_case property names; null fields omitted.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The human-readable multi-line report <c>safecode inspect</c> prints.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine($"model      {Dir}");
        sb.AppendLine($"family     {Family} ({string.Join(", ", Architectures)})  config: {ConfigLayout}{(TransformersVersion is null ? "" : " v" + TransformersVersion)}  dtype: {DType ?? "?"}");
        sb.AppendLine("text       " + string.Join("  ", Text.Select(kv => $"{kv.Key}={Fmt(kv.Value)}")));
        if (Vision.Count > 0) sb.AppendLine("vision     " + string.Join("  ", Vision.Select(kv => $"{kv.Key}={Fmt(kv.Value)}")));
        if (ImageProcessor is not null) sb.AppendLine($"processor  {ImageProcessor}");
        sb.AppendLine($"tensors    {TensorCount}  parameters {ParameterCount.ToString("N0", inv)} ({Human(ParameterCount)}){(TiedEmbeddings ? "  lm_head tied to embed_tokens" : "")}");
        foreach (var (k, v) in ParametersByComponent) sb.AppendLine($"  {k,-15} {v.ToString("N0", inv),16}  {100.0 * v / Math.Max(1, ParameterCount),5:F1}%");
        sb.AppendLine("dtypes     " + string.Join("  ", TensorsByDType.Select(kv => $"{kv.Key}:{kv.Value}")));
        sb.AppendLine($"files      {Files.Count} ({HumanBytes(TotalBytes)})");
        foreach (var f in Files) sb.AppendLine($"  {f.Name,-40} {HumanBytes(f.Bytes),10}  {f.Tensors} tensors");
        return sb.ToString();
    }

    private static string Fmt(object o) => o switch
    {
        double d => d.ToString("G", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => Convert.ToString(o, CultureInfo.InvariantCulture) ?? "",
    };

    private static string Human(long n) => n >= 1_000_000_000 ? $"{n / 1e9:F2} B" : n >= 1_000_000 ? $"{n / 1e6:F2} M" : n >= 1000 ? $"{n / 1e3:F1} K" : n.ToString(CultureInfo.InvariantCulture);

    /// <summary>A byte count in B, KiB, MiB or GiB (binary units).</summary>
    public static string HumanBytes(long b) => b >= 1L << 30 ? $"{b / (double)(1L << 30):F2} GiB" : b >= 1 << 20 ? $"{b / (double)(1 << 20):F1} MiB" : b >= 1024 ? $"{b / 1024.0:F1} KiB" : $"{b} B";
}

/// <summary>One weight file in an <see cref="InspectReport"/>.</summary>
public sealed record InspectFileEntry(string Name, long Bytes, int Tensors);
