using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Processors;

/// <summary>
/// One rule of the decoding pipeline: scores in, new scores out (logits or probabilities, [rows, vocab] or [vocab]),
/// the input left untouched and nothing read back to the host. Rules are composed into a <see cref="LogitsChain"/>
/// per mode and preset, the way HF's LogitsProcessorList and llama.cpp's sampler chain are.
/// </summary>
internal interface ILogitsProcessor
{
    /// <summary>Returns the transformed scores (a new tensor, or an alias when the rule changes nothing).</summary>
    Tensor Process(Tensor scores);
}

/// <summary>Processors applied in order.</summary>
internal sealed class LogitsChain(params ILogitsProcessor[] processors) : ILogitsProcessor
{
    /// <summary>The rules, in the order they run.</summary>
    public IReadOnlyList<ILogitsProcessor> Processors { get; } = processors;

    /// <summary>The chain with <paramref name="more"/> appended.</summary>
    public LogitsChain Then(params ILogitsProcessor[] more) => new([.. Processors, .. more]);

    /// <inheritdoc/>
    public Tensor Process(Tensor scores)
    {
        var s = scores;
        foreach (var p in Processors) s = p.Process(s);
        return ReferenceEquals(s, scores) ? scores.alias() : s;
    }
}

/// <summary>SafeCoDe's contrast of the [real, noised] rows: z_r − α·z_n, one [vocab] row out.</summary>
internal sealed class SafeCoDeContrast(double alpha) : ILogitsProcessor
{
    /// <summary>α, the weight of the noised branch.</summary>
    public double Alpha => alpha;
    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => LogitsOps.SafeCoDeContrast(scores[0], scores[1], alpha);
}

/// <summary>VCD's contrast with the β plausibility cut-off while the noised row is there ([2, vocab] → [1, vocab]); else the real row.</summary>
internal sealed class VcdContrast(double alpha, double beta) : ILogitsProcessor
{
    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => scores.shape[0] == 2
        ? LogitsOps.VcdContrast(scores.narrow(0, 0, 1), scores.narrow(0, 1, 1), alpha, beta)
        : scores.narrow(0, 0, 1);
}

/// <summary>The real branch's row alone ([rows, vocab] → [1, vocab]).</summary>
internal sealed class RealRow : ILogitsProcessor
{
    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => scores.narrow(0, 0, 1);
}

/// <summary>Bans token ids (image placeholders): their logits become −∞. The index is built once per request.</summary>
internal sealed class BanTokens(Tensor? index) : ILogitsProcessor
{
    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => Sampler.Suppress(scores, index);
}

/// <summary>Logits → probabilities over the last axis.</summary>
internal sealed class Softmax : ILogitsProcessor
{
    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => scores.softmax(-1);
}

/// <summary>
/// Refusal-token modulation on probabilities: × (1 − 0.5·λ_supp) on a safe verdict (<see cref="Suppress"/>),
/// × (1 + λ_boost) on an unsafe one (<see cref="Boost"/>), renormalised.
/// </summary>
internal sealed class RefusalScale(Tensor refusalIds, double factor) : ILogitsProcessor, IDisposable
{
    private Tensor? _scale;

    /// <summary>The factor applied to refusal-token probabilities.</summary>
    public double Factor => factor;
    /// <summary>Safe verdict: the reference code's suppression.</summary>
    public static RefusalScale Suppress(Tensor ids, double lambdaSupp) => new(ids, Math.Max(0.0, 1 - 0.5 * lambdaSupp));
    /// <summary>Unsafe verdict, soft form: the paper's boost.</summary>
    public static RefusalScale Boost(Tensor ids, double lambdaBoost) => new(ids, 1 + lambdaBoost);

    /// <inheritdoc/>
    /// <remarks>The [vocab] scale vector is made at the first call and reused (no per-step ones(vocab)).</remarks>
    public Tensor Process(Tensor scores) => LogitsOps.ScaleAndRenormalize(scores, Vector(scores.shape[^1], scores.device));

    /// <summary>The float32 [<paramref name="vocab"/>] scale vector (made once, kept until <see cref="Dispose"/>): what the batcher stacks for guided rows.</summary>
    public Tensor Vector(long vocab, Device device)
    {
        if (_scale is null || _scale.shape[0] != vocab || _scale.device != device)
        {
            _scale?.Dispose();
            _scale = LogitsOps.RefusalScaleVector(vocab, refusalIds, factor, device).DetachFromDisposeScope();
        }
        return _scale;
    }

    /// <summary>Frees the scale vector.</summary>
    public void Dispose() { _scale?.Dispose(); _scale = null; }
}

/// <summary>Logits divided by the temperature (sampling only; greedy decoding skips it).</summary>
internal sealed class Temperature(double t) : ILogitsProcessor
{
    private readonly Scalar _t = t.ToScalar(); // held for the processor's lifetime (see Runtime/Scalars.cs)

    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => scores / _t;
}

/// <summary>Keeps the k largest logits per row (0: off).</summary>
internal sealed class TopK(int k) : ILogitsProcessor
{
    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => Sampler.TopK(scores, k);
}

/// <summary>Nucleus filter on logits (1: off).</summary>
internal sealed class TopP(double p) : ILogitsProcessor
{
    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => Sampler.TopP(scores, p);
}

/// <summary>The reference's temperature on probabilities: softmax(log(p + 1e-10) / T).</summary>
internal sealed class TemperedDistribution(double t) : ILogitsProcessor
{
    /// <inheritdoc/>
    public Tensor Process(Tensor scores) => LogitsOps.TemperedDistribution(scores, t);
}
