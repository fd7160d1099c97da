using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Rules;

/// <summary>
/// The pure TorchSharp steps the decoding rules are made of, on float32 tensors whose last axis is the vocabulary:
/// the reference implementation every rule (and any fused kernel) is checked against. Nothing here synchronises with
/// the host, and no input is changed.
/// </summary>
public static class LogitsOps
{
    /// <summary>SafeCoDe's contrast (paper Eq. 1, reference code): z_r − α·z_n. No (1+α), no plausibility cut-off.</summary>
    public static Tensor SafeCoDeContrast(Tensor real, Tensor noised, double alpha)
    {
        // −(α·z_n) + z_r, in place on the one temporary: the same value as z_r − α·z_n, bit for bit
        using var a = alpha.ToScalar();
        var scaled = noised * a;
        return scaled.neg_().PlusInPlace(real);
    }

    /// <summary>Multiplies the probabilities of <paramref name="ids"/> by <paramref name="factor"/> and renormalises (last axis).</summary>
    public static Tensor ScaleAndRenormalize(Tensor probs, Tensor ids, double factor)
    {
        using var scale = RefusalScaleVector(probs.shape[^1], ids, factor, probs.device);
        return ScaleAndRenormalize(probs, scale);
    }

    /// <summary>A float32 [vocab] vector: 1 everywhere, <paramref name="factor"/> at <paramref name="ids"/> (made once per request).</summary>
    public static Tensor RefusalScaleVector(long vocab, Tensor ids, double factor, Device device)
    {
        using var f = factor.ToScalar();
        return ones(vocab, ScalarType.Float32, device).index_fill_(0, ids, f);
    }

    /// <summary>Multiplies by a precomputed [vocab] (or [rows, vocab]) <paramref name="scale"/> and renormalises, dividing in place.</summary>
    public static Tensor ScaleAndRenormalize(Tensor probs, Tensor scale)
    {
        var p = probs * scale;
        using var sum = p.sum(-1, keepdim: true);
        return p.div_(sum);
    }

    /// <summary>Safe verdict: refusal-token probabilities × (1 − 0.5·λ_supp), renormalised (reference code).</summary>
    public static Tensor SuppressRefusals(Tensor probs, Tensor refusalIds, double lambdaSupp) =>
        ScaleAndRenormalize(probs, refusalIds, SuppressFactor(lambdaSupp));

    /// <summary>Unsafe verdict, soft form (paper; the reference's fallback): refusal-token probabilities × (1 + λ_boost), renormalised.</summary>
    public static Tensor BoostRefusals(Tensor probs, Tensor refusalIds, double lambdaBoost) =>
        ScaleAndRenormalize(probs, refusalIds, BoostFactor(lambdaBoost));

    /// <summary>The suppression factor max(0, 1 − 0.5·λ_supp).</summary>
    public static double SuppressFactor(double lambdaSupp) => Math.Max(0.0, 1 - 0.5 * lambdaSupp);

    /// <summary>The boost factor 1 + λ_boost.</summary>
    public static double BoostFactor(double lambdaBoost) => 1 + lambdaBoost;

    /// <summary>The reference's temperature step on probabilities: softmax(log(p + 1e-10) / T).</summary>
    public static Tensor TemperedDistribution(Tensor probs, double temperature)
    {
        using var scope = NewDisposeScope();
        using var eps = 1e-10.ToScalar();
        using var t = temperature.ToScalar();
        return (probs.Plus(eps).log() / t).softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Scores each phrase by the summed probability of its token ids (the reference's heuristic) in one gather:
    /// <paramref name="phraseTokens"/> [phrases, maxLen] padded with −1. Returns [phrases].
    /// </summary>
    public static Tensor PhraseScores(Tensor probs, Tensor phraseTokens)
    {
        using var scope = NewDisposeScope();
        var valid = phraseTokens.ge(Scalars.Zero);
        var idx = phraseTokens.clamp_min(Scalars.Zero);
        var g = probs.view(-1).index_select(0, idx.view(-1)).view(idx.shape);
        return (g * valid.to(ScalarType.Float32)).sum(1).MoveToOuterDisposeScope();
    }

    /// <summary>Sets the ids in <paramref name="index"/> (int64, on the logits' device, built once per request) to −∞.</summary>
    public static Tensor Suppress(Tensor logits, Tensor? index) =>
        index is null || index.numel() == 0 ? logits.alias() : logits.index_fill(logits.dim() - 1, index, Scalars.NegativeInfinity);

    /// <summary>An int64 index of <paramref name="ids"/> on <paramref name="device"/> for <see cref="Suppress"/> (null when empty).</summary>
    public static Tensor? Index(IReadOnlyList<long> ids, Device device)
    {
        if (ids.Count == 0) return null;
        using var cpu = tensor(ids.ToArray(), ScalarType.Int64);
        return cpu.to(device).DetachFromDisposeScope();
    }

    /// <summary>Keeps the k largest logits per row of [rows, vocab] (ties at the k-th value kept, as HF does); 0 or ≥ vocab: off.</summary>
    public static Tensor TopK(Tensor logits, int k)
    {
        if (k <= 0 || k >= logits.shape[1]) return logits.alias();
        using var scope = NewDisposeScope();
        var kth = logits.topk(k, 1).values.narrow(1, k - 1, 1);
        return logits.masked_fill(logits.lt(kth), Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>Nucleus filter on [rows, vocab] logits: keeps the smallest set of top tokens whose probability reaches p (at least one); p ≥ 1: off.</summary>
    public static Tensor TopP(Tensor logits, double p)
    {
        if (p >= 1) return logits.alias();
        using var scope = NewDisposeScope();
        // HF's rule: sort ascending, drop tokens whose cumulative probability is ≤ 1 − p, always keep the last.
        var (sorted, order) = logits.sort(1, descending: false);
        var cum = sorted.softmax(1).cumsum(1);
        using var cut = (1 - p).ToScalar();
        var remove = cum.le(cut);
        remove.narrow(1, remove.shape[1] - 1, 1).fill_(Scalars.False);
        var mask = zeros_like(remove).scatter(1, order, remove);
        return logits.masked_fill(mask, Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }
}
