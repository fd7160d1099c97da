using System.Diagnostics;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch;

/// <summary>Number format of a model's weights and activations.</summary>
public enum ModelDType
{
    /// <summary>32-bit float (exact; the CPU default).</summary>
    Float32,
    /// <summary>bfloat16 (the CUDA default).</summary>
    BFloat16,
    /// <summary>IEEE half precision.</summary>
    Float16,
}

/// <summary>Where a model load stands.</summary>
/// <param name="Stage">runtime, tokenizer, weights or done.</param>
/// <param name="BytesDone">Weight bytes read so far (checkpoint file bytes of the tensors loaded).</param>
/// <param name="BytesTotal">Weight bytes to read.</param>
/// <param name="TensorsDone">Tensors loaded so far.</param>
/// <param name="TensorsTotal">Tensors to load.</param>
/// <param name="Elapsed">Time since the load started.</param>
/// <param name="Message">A human-readable line for the stage.</param>
public sealed record LoadProgress(string Stage, long BytesDone, long BytesTotal, int TensorsDone, int TensorsTotal, TimeSpan Elapsed, string Message)
{
    /// <summary>Read throughput so far in GB/s (10⁹ bytes per second).</summary>
    public double GigabytesPerSecond => Elapsed.TotalSeconds > 0 ? BytesDone / 1e9 / Elapsed.TotalSeconds : 0;
}

public sealed partial class SafeCoDeEngine
{
    /// <summary>The TorchSharp scalar type of a <see cref="ModelDType"/>.</summary>
    internal static ScalarType ToScalarType(ModelDType d) => d switch
    {
        ModelDType.Float32 => ScalarType.Float32,
        ModelDType.BFloat16 => ScalarType.BFloat16,
        ModelDType.Float16 => ScalarType.Float16,
        _ => throw new ArgumentOutOfRangeException(nameof(d)),
    };

    /// <summary>Parses float32/fp32, bfloat16/bf16, float16/fp16/half.</summary>
    /// <exception cref="ArgumentException">Not one of those.</exception>
    public static ModelDType ParseDType(string text) => Backbones.ParseDType(text) switch
    {
        ScalarType.BFloat16 => ModelDType.BFloat16,
        ScalarType.Float16 => ModelDType.Float16,
        _ => ModelDType.Float32,
    };

    /// <summary>
    /// Loads a model folder off the calling thread, reporting bytes and tensors read; cancelling stops the load between
    /// two tensors and frees what was loaded.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> was cancelled.</exception>
    public static Task<SafeCoDeEngine> LoadAsync(string modelDir, EngineOptions? options = null, IProgress<LoadProgress>? progress = null, CancellationToken cancel = default) =>
        Task.Run(() => LoadCore(modelDir, options ?? new EngineOptions(), null, progress, cancel), cancel);

    private static SafeCoDeEngine LoadCore(string modelDir, EngineOptions o, IProgress<string>? text, IProgress<LoadProgress>? detail, CancellationToken cancel)
    {
        var sw = Stopwatch.StartNew();
        void Say(string stage, long bd, long bt, int td, int tt, string msg)
        {
            if (text is not null && stage != "weights") text.Report(msg);
            detail?.Report(new LoadProgress(stage, bd, bt, td, tt, sw.Elapsed, msg));
        }
        cancel.ThrowIfCancellationRequested();
        if (o.MaxBatchRows < 1) throw new ArgumentOutOfRangeException("options", o.MaxBatchRows, "EngineOptions.MaxBatchRows must be at least 1 (1: requests run one at a time)");
        var runtime = NativeRuntime.Initialize(new RuntimeOptions { Device = o.Device });
        var device = NativeRuntime.SelectDevice(o.Device);
        var dtype = o.DType is { } d ? ToScalarType(d) : (device.type == DeviceType.CUDA ? ScalarType.BFloat16 : ScalarType.Float32);
        Say("runtime", 0, 0, 0, 0, $"runtime: {runtime.Backend} ({runtime.LibTorchSource})");
        var dir = ModelDirectory.Open(modelDir);
        var tokenizer = TokenizerLoader.Load(dir.Dir);
        var qformer = ModelFamilies.Of(dir.Config).LoadSideTokenizer(dir);
        var images = ImageProcessors.For(dir);
        cancel.ThrowIfCancellationRequested();
        var bytesAfter = detail is null ? null : CumulativeBytes(dir, dtype);
        long total = bytesAfter is { Length: > 0 } ? bytesAfter[^1] : dir.WeightBytes;
        Say("tokenizer", 0, total, 0, bytesAfter?.Length ?? 0,
            $"loading {dir.Config.ModelType} ({InspectReport.HumanBytes(dir.WeightBytes)}) to {device} as {dtype}");
        var weights = new InlineProgress<(int done, int total)>(p =>
        {
            cancel.ThrowIfCancellationRequested(); // thrown inside the loader: it disposes the half-loaded module
            long bytes = bytesAfter is not null && p.done <= bytesAfter.Length ? bytesAfter[p.done - 1] : (long)((double)p.done / p.total * total);
            Say("weights", bytes, total, p.done, p.total, $"weights {p.done}/{p.total}");
        });
        var model = Backbones.Load(dir, device, dtype, detail is null && !cancel.CanBeCanceled ? null : weights);
        var engine = new SafeCoDeEngine(dir, model, tokenizer, qformer, images, o);
        Say("done", total, total, bytesAfter?.Length ?? 0, bytesAfter?.Length ?? 0,
            $"loaded {InspectReport.HumanBytes(total)} in {sw.Elapsed.TotalSeconds:F1} s ({total / 1e9 / Math.Max(1e-9, sw.Elapsed.TotalSeconds):F2} GB/s)");
        return engine;
    }

    /// <summary>
    /// Checkpoint bytes read after each loaded tensor, in the loader's order (the module's parameter order, tensors the
    /// file has): built from a meta-device module, so no memory is spent.
    /// </summary>
    private static long[] CumulativeBytes(ModelDirectory dir, ScalarType dtype)
    {
        var (module, _) = Backbones.Create(dir.Config, new ParamFactory(META, dtype));
        using (module)
        {
            var list = new List<long>();
            long sum = 0;
            foreach (var (name, _) in module.named_parameters())
            {
                if (!dir.Tensors.TryGetValue(name, out var src)) continue;
                sum += src.Parts.Sum(part => part.Entry.ByteLength);
                list.Add(sum);
            }
            return list.ToArray();
        }
    }

    /// <summary>An <see cref="IProgress{T}"/> that runs its callback on the reporting thread (exceptions propagate).</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
