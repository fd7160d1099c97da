using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Eval.SafeScenes;

/// <summary>Settings of a SafeScenes training run.</summary>
public sealed record SafeScenesTrainOptions
{
    /// <summary>Seed of the initial weights and of the batch order.</summary>
    public long Seed { get; init; } = 1;
    /// <summary>Optimiser steps.</summary>
    public int Steps { get; init; } = 3000;
    /// <summary>Examples per step, all of one task; the tasks take turns as <see cref="SafeScenesTrainer.Schedule"/> says.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak learning rate of AdamW (linear warm-up, cosine decay to a tenth).</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>Largest vocabulary of the world's byte-level BPE.</summary>
    public int VocabSize { get; init; } = 1536;
    /// <summary>CPU threads torch may use (0: leave torch's default).</summary>
    public int Threads { get; init; }
    /// <summary>Log a line every this many steps.</summary>
    public int LogEvery { get; init; } = 25;
    /// <summary>Also write the checkpoint every this many steps (0: only at the end), so a long run can be stopped early.</summary>
    public int SaveEvery { get; init; }
    /// <summary>
    /// When set, every <see cref="SaveEvery"/> steps the checkpoint is also written to its own folder
    /// <c>step-NNNNN</c> under this directory (the final one too), so a checkpoint can be chosen afterwards on a
    /// validation world (<c>safecode safescenes select</c>).
    /// </summary>
    public string? SnapshotDir { get; init; }
    /// <summary>
    /// Label smoothing of the captioning steps' cross-entropy (0: none; the other tasks never smooth, their answer
    /// shares are the point). Smoothing bounds how far the model pushes an object it never saw in a context below the
    /// others there, so its look can still win in a held-out combination.
    /// </summary>
    public double CaptionLabelSmoothing { get; init; }
    /// <summary>Dtype of the written weights.</summary>
    public ScalarType SaveDType { get; init; } = ScalarType.BFloat16;
}

/// <summary>What a training run did.</summary>
/// <param name="Losses">Mean supervised cross-entropy of each step.</param>
/// <param name="Seconds">Wall time of the optimisation.</param>
/// <param name="Parameters">Trainable parameters.</param>
/// <param name="VocabSize">Tokenizer vocabulary.</param>
/// <param name="Tokens">Tokens processed (padding included).</param>
public sealed record SafeScenesTrainResult(IReadOnlyList<double> Losses, double Seconds, long Parameters, int VocabSize, long Tokens)
{
    /// <summary>Largest logit difference between the trained model and the written checkpoint reloaded, relative to the largest logit.</summary>
    public double ReloadRelativeError { get; init; }
}

/// <summary>
/// Trains the SafeScenes demonstration model: a small LLaVA-1.5-architecture checkpoint (CLIP-style tower, MLP
/// projector, Llama decoder, tied embeddings) with a world-specific byte-level BPE, from scratch, with TorchSharp
/// (AdamW, cross-entropy at the reply positions only), on the training set's captioning, judge-verdict and answering
/// tasks in the exact prompt format the engine uses (the same prompt builder, chat format and image processor).
/// </summary>
public static class SafeScenesTrainer
{
    /// <summary>The model's config.json for a vocabulary size (image 112 px, patch 16: 49 image tokens).</summary>
    public static JsonObject Config(int vocabSize) => new()
    {
        ["architectures"] = new JsonArray("LlavaForConditionalGeneration"),
        ["model_type"] = "llava",
        ["image_token_index"] = ByteBpeTrainer.ImageId,
        ["pad_token_id"] = ByteBpeTrainer.PadId,
        ["projector_hidden_act"] = "gelu",
        ["vision_feature_layer"] = -1,
        ["vision_feature_select_strategy"] = "default",
        ["tie_word_embeddings"] = true,
        ["torch_dtype"] = "bfloat16",
        ["text_config"] = new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = vocabSize, ["hidden_size"] = 128, ["intermediate_size"] = 352,
            ["num_hidden_layers"] = 4, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 4, ["head_dim"] = 32,
            ["max_position_embeddings"] = 1024, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0,
            ["bos_token_id"] = ByteBpeTrainer.BosId, ["eos_token_id"] = ByteBpeTrainer.EosId, ["pad_token_id"] = ByteBpeTrainer.PadId,
            ["tie_word_embeddings"] = true,
        },
        ["vision_config"] = new JsonObject
        {
            ["model_type"] = "clip_vision_model", ["hidden_size"] = 96, ["intermediate_size"] = 192, ["num_hidden_layers"] = 3,
            ["num_attention_heads"] = 4, ["image_size"] = 112, ["patch_size"] = 16, ["projection_dim"] = 96, ["hidden_act"] = "quick_gelu",
        },
    };

    /// <summary>The tasks in the order the steps take them, repeated: captioning (the hardest) gets three steps in six, answering two, the verdict one.</summary>
    public static readonly IReadOnlyList<string> Schedule = ["caption", "answer", "caption", "verdict", "caption", "answer"];

    private sealed record Encoded(long[] Ids, int PromptLength, string? Image, double? Weight);

    private const string NoisedSuffix = "#noised";

    /// <summary>σ of the default method's noised view: the trainer shows the model the second branch it will see.</summary>
    private static double DefaultNoiseStd
    {
        get
        {
            var o = DecodingMethods.Defaults(DecodingMethods.Default);
            return DecodingMethods.Of(o).Needs(o).Noised?.Std ?? throw new InvalidOperationException($"the default method {o.Method} has no noised branch");
        }
    }

    /// <summary>Seed of the noise drawn for a training image's noised view (FNV-1a of its file name).</summary>
    public static long NoiseSeed(string image)
    {
        ulong h = 14695981039346656037UL;
        foreach (var ch in image) { h ^= ch; h *= 1099511628211UL; }
        return (long)(h >> 1);
    }

    /// <summary>Texts the tokenizer is trained on: every prompt as the chat format renders it, and every reply.</summary>
    public static IEnumerable<string> Corpus(IReadOnlyList<TrainingExample> examples)
    {
        foreach (var e in examples)
        {
            yield return "USER: " + SafeScenesPrompts.UserText(e) + " ASSISTANT:";
            yield return e.Target;
        }
    }

    /// <summary>
    /// Trains on the training folder <paramref name="worldDir"/> (train.jsonl + images/) and writes the checkpoint
    /// (Hub layout, <see cref="SafeScenesTrainOptions.SaveDType"/>) to <paramref name="outDir"/>.
    /// </summary>
    public static SafeScenesTrainResult Train(string worldDir, string outDir, SafeScenesTrainOptions o, Action<string>? log = null)
    {
        var examples = SafeScenesWorld.ReadTraining(worldDir);
        NativeRuntime.Initialize(new RuntimeOptions { Device = DeviceRequest.Cpu });
        if (o.Threads > 0) torch.set_num_threads(o.Threads);
        torch.manual_seed(o.Seed);

        // tokenizer + initial weights in a scratch folder, loaded through the engine (its prompt builder and image processor)
        var scratch = Directory.CreateTempSubdirectory("safescenes-init-").FullName;
        try
        {
            var tokDir = Path.Combine(scratch, "tok");
            int vocab = ByteBpeTrainer.TrainAndSave(Corpus(examples), o.VocabSize, tokDir);
            var initDir = Path.Combine(scratch, "init");
            Directory.CreateDirectory(initDir);
            var configPath = Path.Combine(scratch, "config.json");
            File.WriteAllText(configPath, Config(vocab).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            RandomCheckpoint.Write(configPath, initDir, new RandomCheckpointOptions { Seed = o.Seed, DType = ScalarType.Float32, InitScale = 1.0, TokenizerDir = tokDir });
            using var engine = SafeCoDeEngine.Load(initDir, new EngineOptions { Device = DeviceRequest.Cpu, DType = ModelDType.Float32 });
            var builder = new PromptBuilder(engine.Directory.Config, engine.Tokenizer, engine.Format);
            var model = engine.Model;
            var tiedNames = BackboneTraining.TieWeights(model); // one embedding table for input and output
            ((nn.Module)model).train();
            var parameters = BackboneTraining.Parameters(model);
            foreach (var (_, p) in parameters) p.requires_grad_(true);
            long paramCount = parameters.Sum(p => p.Parameter.numel());
            log?.Invoke($"vocab {vocab}, {paramCount:N0} parameters, {examples.Count} examples");

            // encode every example once; pixels once per image file
            var pixels = new Dictionary<string, Tensor>();
            var layout = engine.Images.Layout(SceneRenderer.Size, SceneRenderer.Size);
            var byTask = new Dictionary<string, List<Encoded>>();
            foreach (var e in examples)
            {
                bool img = SafeScenesPrompts.HasImage(e);
                var prompt = builder.Encode([ChatTurn.User(SafeScenesPrompts.UserText(e), img ? 1 : 0)], img ? [layout] : []);
                // the reply starts right after "ASSISTANT:" without a space, as the engine encodes its refusal phrases
                var target = engine.Tokenizer.Encode(e.Target, false).Select(i => (long)i).Append(ByteBpeTrainer.EosId).ToArray();
                int given = e.Prefix is null ? 0 : engine.Tokenizer.Encode(e.Prefix, false).Length;
                string? key = img && e.Image is not null ? (e.Noised ? e.Image + NoisedSuffix : e.Image) : null;
                if (key is not null && !pixels.ContainsKey(key))
                {
                    var rgb = ImageDecoder.Decode(File.ReadAllBytes(Path.Combine(worldDir, e.Image!)), e.Image!);
                    // the noised view: the engine's own noise (SafeCoDe's second branch), seeded by the file name
                    if (e.Noised) rgb = PixelNoise.Apply(rgb, DefaultNoiseStd, NoiseSeed(e.Image!));
                    using var processed = engine.Images.Process([rgb]);
                    pixels[key] = processed["pixel_values"].clone().DetachFromDisposeScope();
                }
                if (!byTask.TryGetValue(e.Task, out var list)) byTask[e.Task] = list = [];
                list.Add(new Encoded([.. prompt.Ids, .. target], prompt.Length + given, key, e.Weight));
            }
            var tasks = Schedule.Where(byTask.ContainsKey).ToArray();
            if (tasks.Length == 0) throw new InvalidDataException("the training set has no caption, verdict or answer examples");

            // TorchSharp's AdamW hands libtorch finalizer-owned scalars (see ScopedScalarAdamW); this one updates identically
            using var optimizer = new ScopedScalarAdamW(parameters.Select(p => p.Parameter), lr: o.LearningRate, weightDecay: 0.01);
            var rng = SceneRng.For(o.Seed, "batches");
            var losses = new List<double>();
            long tokens = 0;
            var sw = Stopwatch.StartNew();
            for (int step = 0; step < o.Steps; step++)
            {
                double lr = step < o.WarmupSteps ? o.LearningRate * (step + 1) / o.WarmupSteps
                    : o.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * (step - o.WarmupSteps) / Math.Max(1, o.Steps - o.WarmupSteps))));
                optimizer.LearningRate = lr;
                var pool = byTask[tasks[step % tasks.Length]];
                var batch = Enumerable.Range(0, o.BatchSize).Select(_ => pool[rng.Int(pool.Count)]).ToList();
                using var scope = NewDisposeScope();
                int t = batch.Max(b => b.Ids.Length);
                var ids = new long[batch.Count * t];
                var mask = new long[batch.Count * t];
                var labels = new long[batch.Count * t];
                for (int r = 0; r < batch.Count; r++)
                    for (int j = 0; j < t; j++)
                    {
                        bool real = j < batch[r].Ids.Length;
                        ids[r * t + j] = real ? batch[r].Ids[j] : ByteBpeTrainer.PadId;
                        mask[r * t + j] = real ? 1 : 0;
                        // label at j = the token at j+1 when that token belongs to the reply
                        labels[r * t + j] = j + 1 < batch[r].Ids.Length && j + 1 >= batch[r].PromptLength ? batch[r].Ids[j + 1] : -100;
                    }
                tokens += ids.Length;
                var images = new Dictionary<string, Tensor>();
                if (batch[0].Image is not null) images["pixel_values"] = cat(batch.Select(b => pixels[b.Image!]).ToList(), 0);
                var inputs = new BackboneInputs(tensor(ids).view(batch.Count, t), tensor(mask).view(batch.Count, t), images);
                var logits = BackboneTraining.Logits(model, inputs);
                double smoothing = tasks[step % tasks.Length] == "caption" ? o.CaptionLabelSmoothing : 0;
                var loss = SupervisedLoss(logits, labels, batch.Select(b => b.Weight).ToArray(), smoothing);
                optimizer.ZeroGrad();
                loss.backward();
                nn.utils.clip_grad_norm_(parameters.Select(p => p.Parameter), 1.0);
                optimizer.Step();
                double l = loss.item<float>();
                losses.Add(l);
                if (o.SaveEvery > 0 && (step + 1) % o.SaveEvery == 0 && step + 1 < o.Steps)
                {
                    Save(engine, parameters, tiedNames, initDir, outDir, o.SaveDType);
                    log?.Invoke($"saved the checkpoint of step {step + 1} to {outDir}");
                    if (o.SnapshotDir is not null) SaveSnapshot(outDir, o.SnapshotDir, step + 1, log);
                }
                if (log is not null && (step % o.LogEvery == 0 || step == o.Steps - 1))
                    log($"step {step + 1}/{o.Steps} task {tasks[step % tasks.Length]} loss {l:F4} lr {lr:E2} {tokens / Math.Max(1e-9, sw.Elapsed.TotalSeconds):F0} tok/s {sw.Elapsed.TotalSeconds:F0} s");
            }
            double seconds = sw.Elapsed.TotalSeconds;

            Save(engine, parameters, tiedNames, initDir, outDir, o.SaveDType);
            double reload = ReloadError(model, outDir, byTask[tasks[0]].Take(2).ToList(), pixels);
            log?.Invoke($"reloaded {outDir}: logits differ from the trained model by {reload:E2} (relative, {o.SaveDType} rounding)");
            if (o.SnapshotDir is not null) SaveSnapshot(outDir, o.SnapshotDir, o.Steps, log);
            foreach (var p in pixels.Values) p.Dispose();
            return new SafeScenesTrainResult(losses, seconds, paramCount, vocab, tokens) { ReloadRelativeError = reload };
        }
        finally { try { Directory.Delete(scratch, true); } catch (IOException) { } }
    }

    /// <summary>
    /// The loss of one batch: cross-entropy at the supervised positions (<paramref name="labels"/> ≠ −100, row-major over
    /// the batch's rows), their mean when no row has a weight (the plain path, as every run before soft answers), else
    /// each position's loss times its row's weight (null: 1) over the number of supervised positions — so an input
    /// written refused with weight p and answered with 1 − p is pulled towards refusing with probability p.
    /// </summary>
    public static Tensor SupervisedLoss(Tensor logits, long[] labels, double?[] rowWeights, double labelSmoothing = 0)
    {
        var flat = logits.view(-1, logits.shape[^1]);
        if (rowWeights.All(w => w is null))
            return nn.functional.cross_entropy(flat, tensor(labels), ignore_index: -100, label_smoothing: labelSmoothing);
        if (labels.Length % rowWeights.Length != 0) throw new ArgumentException($"{labels.Length} labels do not split into {rowWeights.Length} rows");
        int t = labels.Length / rowWeights.Length;
        var weights = new float[labels.Length];
        for (int i = 0; i < labels.Length; i++) weights[i] = labels[i] == -100 ? 0f : (float)(rowWeights[i / t] ?? 1.0);
        var each = nn.functional.cross_entropy(flat, tensor(labels), ignore_index: -100, reduction: nn.Reduction.None, label_smoothing: labelSmoothing);
        return (each * tensor(weights)).sum() / Math.Max(1, labels.Count(x => x != -100));
    }

    /// <summary>The snapshot folder of a step: <c>step-00200</c> (sorts in step order).</summary>
    public static string SnapshotName(int step) => $"step-{step:D5}";

    // copies the checkpoint just written to outDir into its own step folder under snapshotDir
    private static void SaveSnapshot(string outDir, string snapshotDir, int step, Action<string>? log)
    {
        var dst = Path.Combine(snapshotDir, SnapshotName(step));
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(outDir)) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)), true);
        log?.Invoke($"kept a copy of step {step} in {dst}");
    }

    /// <summary>Reloads the written checkpoint and compares its logits with the trained model's on a few examples.</summary>
    private static double ReloadError(IBackbone trained, string outDir, List<Encoded> batch, Dictionary<string, Tensor> pixels)
    {
        using var check = SafeCoDeEngine.Load(outDir, new EngineOptions { Device = DeviceRequest.Cpu, DType = ModelDType.Float32 });
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        double worst = 0;
        foreach (var e in batch)
        {
            var images = new Dictionary<string, Tensor>();
            if (e.Image is not null) images["pixel_values"] = pixels[e.Image];
            var inputs = new BackboneInputs(tensor(e.Ids).view(1, -1), null, images);
            var a = BackboneTraining.Logits(trained, inputs);
            var b = BackboneTraining.Logits(check.Model, inputs);
            worst = Math.Max(worst, (a - b).abs().max().item<float>() / Math.Max(1e-6, a.abs().max().item<float>()));
        }
        return worst;
    }

    /// <summary>Writes the trained parameters under their Hub names (tied lm_head left out) and the folder's other files.</summary>
    private static void Save(SafeCoDeEngine engine, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters, IReadOnlyList<string> tied, string initDir, string outDir, ScalarType dtype)
    {
        Directory.CreateDirectory(outDir);
        var config = engine.Directory.Config;
        var family = ModelFamilies.Of(config);
        var specs = new List<TensorSpec>();
        var source = new Dictionary<string, Tensor>();
        foreach (var (name, p) in parameters)
        {
            if (tied.Contains(name)) continue; // shares its source's tensor (tie_word_embeddings)
            foreach (var hub in family.HubTensors(name, p.shape))
            {
                if (hub.Part >= 0) throw new NotSupportedException($"split tensors are not expected in a LLaVA checkpoint ({name})");
                specs.Add(new TensorSpec(hub.Name, dtype, hub.Shape));
                source[hub.Name] = p;
            }
        }
        SafetensorsWriter.WriteStreaming(Path.Combine(outDir, "model.safetensors"), specs,
            s => source[s.Name].detach().to(dtype).contiguous(), new Dictionary<string, string> { ["format"] = "pt" });
        foreach (var f in Directory.GetFiles(initDir))
        {
            var name = Path.GetFileName(f);
            if (name.EndsWith(".safetensors", StringComparison.Ordinal)) continue;
            File.Copy(f, Path.Combine(outDir, name), overwrite: true);
        }
    }
}
