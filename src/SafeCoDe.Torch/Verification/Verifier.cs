using System.Globalization;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Verification;

/// <summary>The outcome of comparing a backbone with a reference file made by HF transformers.</summary>
public sealed record VerifyResult(
    string Family, double LogitsRelErr, double? NoisedRelErr, double LogitsMaxAbsErr, double? NoisedMaxAbsErr,
    int GreedyMatch, int GreedyTotal, long[] GreedyOurs, long[] GreedyReference, string DType, string Device, double LoadMs, double RunMs)
{
    /// <summary>fp32: both relative errors ≤ 1e-4 and every greedy token equal. bf16/fp16: both ≤ 3e-2.</summary>
    public bool Pass => DType == "float32"
        ? LogitsRelErr <= 1e-4 && (NoisedRelErr ?? 0) <= 1e-4 && GreedyMatch == GreedyTotal
        : LogitsRelErr <= 3e-2 && (NoisedRelErr ?? 0) <= 3e-2;

    /// <summary>Formats <paramref name="x"/> as 0.00e+00 (invariant culture).</summary>
    public static string Sci(double x) => x.ToString("0.00e+00", CultureInfo.InvariantCulture);

    /// <summary>The one machine-readable line verify ends with.</summary>
    public string SummaryLine() =>
        $"verify: {(Pass ? "PASS" : "FAIL")} family={Family} logits_rel_err={Sci(LogitsRelErr)} noised_rel_err={(NoisedRelErr is { } n ? Sci(n) : "n/a")} greedy_match={GreedyMatch}/{GreedyTotal}";
}

/// <summary>
/// Runs a model on the inputs stored in a reference file (the fixture format: input_ids, attention_mask, image
/// inputs, logits, pixel_values_noised + logits_noised, generated_ids) and compares.
/// </summary>
public static class Verifier
{
    private static readonly HashSet<string> Outputs = ["logits", "logits_noised", "generated_ids", "pixel_values_noised"];

    /// <summary>
    /// Loads the model, compares its prompt logits (and the noised-image logits when the file has them) with the
    /// reference, and replays the reference's greedy continuation with EOS suppressed until its full length.
    /// </summary>
    /// <param name="modelDir">The checkpoint folder.</param>
    /// <param name="referencePath">The reference safetensors; default <c>reference.safetensors</c> in the model folder.</param>
    /// <param name="device">Where to run.</param>
    /// <param name="dtype">Weight and pixel dtype.</param>
    /// <exception cref="SafetensorsFormatException">The reference lacks <c>input_ids</c> or <c>logits</c>.</exception>
    /// <exception cref="InvalidOperationException">Logit shapes differ.</exception>
    public static VerifyResult Run(string modelDir, string? referencePath, Device device, ScalarType dtype)
    {
        var dir = ModelDirectory.Open(modelDir);
        referencePath ??= Path.Combine(dir.Dir, "reference.safetensors");
        var refFile = SafetensorsFile.Open(referencePath);
        foreach (var need in new[] { "input_ids", "logits" })
            if (!refFile.Entries.ContainsKey(need)) throw new SafetensorsFormatException(referencePath, need, "the reference file lacks this tensor");
        CheckLength(refFile, referencePath, dir.Config.Text.MaxPositions);

        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var model = Backbones.Load(dir, device, dtype);
        double loadMs = sw.Elapsed.TotalMilliseconds;
        sw.Restart();

        using var scope = NewDisposeScope();
        var inputs = new Dictionary<string, Tensor>();
        foreach (var name in refFile.Entries.Keys.Where(k => !Outputs.Contains(k)))
            inputs[name] = refFile.Read(name, IsPixelInput(name) ? dtype : null);
        var ids = inputs["input_ids"];
        inputs.TryGetValue("attention_mask", out var mask);
        var images = inputs.Where(kv => kv.Key is not ("input_ids" or "attention_mask")).ToDictionary(kv => kv.Key, kv => kv.Value);
        var batch = new BackboneInputs(ids, mask, images);

        var refLogits = refFile.Read("logits", ScalarType.Float32);
        var (rel, maxAbs) = CompareLogits(model, batch, refLogits);

        double? relN = null, maxN = null;
        if (refFile.Entries.ContainsKey("pixel_values_noised") && refFile.Entries.ContainsKey("logits_noised"))
        {
            var noisedImages = new Dictionary<string, Tensor>(images) { ["pixel_values"] = refFile.Read("pixel_values_noised", dtype) };
            (var r, var m) = CompareLogits(model, batch with { Images = noisedImages }, refFile.Read("logits_noised", ScalarType.Float32));
            relN = r; maxN = m;
        }

        long[] ours = [], reference = [];
        int match = 0, total = 0;
        if (refFile.Entries.ContainsKey("generated_ids"))
        {
            var gen = refFile.Read("generated_ids").to(ScalarType.Int64);
            total = (int)(gen.shape[1] - ids.shape[1]);
            reference = gen[0].narrow(0, ids.shape[1], total).data<long>().ToArray();
            var eos = EosIds(dir);
            // the reference's length exactly: end-of-sequence ids are not picked before it (HF's min_new_tokens)
            ours = DecodeSessions.Greedy(model, batch, total, eos);
            while (match < Math.Min(ours.Length, reference.Length) && ours[match] == reference[match]) match++;
        }
        double runMs = sw.Elapsed.TotalMilliseconds;
        return new VerifyResult(dir.Config.ModelType, rel, relN, maxAbs, maxN, match, total, ours, reference,
            DTypeName(dtype), device.ToString(), loadMs, runMs);
    }

    private static bool IsPixelInput(string name) => name.StartsWith("pixel_values");

    /// <summary>
    /// The reference's prompt and greedy continuation must fit the model's positions, checked from the tensor headers
    /// before anything is read or allocated (a 200k-token reference for a 512-position model is refused at once).
    /// </summary>
    /// <exception cref="InputLimitException">The reference asks for more tokens than the model has positions.</exception>
    private static void CheckLength(SafetensorsFile reference, string path, int positions)
    {
        var ids = reference.Entries["input_ids"].Shape;
        if (ids.Length != 2 || ids[0] != 1)
            throw new SafetensorsFormatException(path, "input_ids", $"expected shape [1, tokens], not [{string.Join(", ", ids)}]");
        long total = ids[1];
        if (reference.Entries.TryGetValue("generated_ids", out var gen))
        {
            if (gen.Shape.Length != 2 || gen.Shape[0] != 1 || gen.Shape[1] < ids[1])
                throw new SafetensorsFormatException(path, "generated_ids", $"expected shape [1, tokens] with at least the prompt's {ids[1]} tokens, not [{string.Join(", ", gen.Shape)}]");
            total = gen.Shape[1];
        }
        if (positions > 0 && total > positions)
            throw new InputLimitException($"{path}: the reference asks for {total:N0} tokens (a {ids[1]:N0}-token prompt{(gen is null ? "" : " and its greedy continuation")}) but the model has {positions:N0} positions (max_position_embeddings)");
    }

    private static (double rel, double maxAbs) CompareLogits(IBackbone model, BackboneInputs batch, Tensor reference)
    {
        using var scope = NewDisposeScope();
        var (state, logits) = model.Prefill(batch, 0, allLogits: true);
        state.Dispose();
        var ours = logits.cpu();
        if (!ours.shape.SequenceEqual(reference.shape))
            throw new InvalidOperationException($"logits shape [{string.Join(",", ours.shape)}] differs from the reference [{string.Join(",", reference.shape)}]");
        var diff = ours - reference;
        double rel = (diff.norm() / reference.norm()).item<float>();
        double maxAbs = diff.abs().max().item<float>();
        return (rel, maxAbs);
    }

    /// <summary>EOS ids from generation_config.json, else from the text config.</summary>
    public static long[] EosIds(ModelDirectory dir) => dir.EosTokenIds;

    /// <summary>The PyTorch-style name of a dtype ("float32", "bfloat16", "float16", else the lower-cased enum name).</summary>
    public static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => t.ToString().ToLowerInvariant(),
    };
}
