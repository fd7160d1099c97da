using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding;

/// <summary>
/// The pure steps of SafeCoDe's logits pipeline on float32 tensors: [branches, vocab] logits in, [vocab]-wide
/// logits or probabilities out. Each step is a TorchSharp reference implementation; nothing here synchronises
/// with the host. Row 0 is the real-image branch, row 1 the noised one.
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

    /// <summary>
    /// VCD's contrast: (1+α)·z_r − α·z_n, with tokens whose real logit is below log β + max z_r set to −∞
    /// (the adaptive plausibility constraint, i.e. p_r &lt; β·max p_r).
    /// </summary>
    public static Tensor VcdContrast(Tensor real, Tensor noised, double alpha, double beta)
    {
        using var scope = NewDisposeScope();
        using var onePlusAlpha = (1 + alpha).ToScalar();
        using var a = alpha.ToScalar();
        using var logBeta = Math.Log(beta).ToScalar();
        var cd = real * onePlusAlpha - noised * a;
        var cutoff = real.max(-1, keepdim: true).values.Plus(logBeta);
        return cd.masked_fill(real.lt(cutoff), Scalars.NegativeInfinity).MoveToOuterDisposeScope();
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

    /// <summary>Multiplies by a precomputed [vocab] <paramref name="scale"/> and renormalises, dividing in place.</summary>
    public static Tensor ScaleAndRenormalize(Tensor probs, Tensor scale)
    {
        var p = probs * scale;
        using var sum = p.sum(-1, keepdim: true);
        return p.div_(sum);
    }

    /// <summary>Safe verdict: refusal-token probabilities × (1 − 0.5·λ_supp), renormalised (reference code).</summary>
    public static Tensor SuppressRefusals(Tensor probs, Tensor refusalIds, double lambdaSupp) =>
        ScaleAndRenormalize(probs, refusalIds, Math.Max(0.0, 1 - 0.5 * lambdaSupp));

    /// <summary>Unsafe verdict, soft form (paper; the reference's fallback): refusal-token probabilities × (1 + λ_boost), renormalised.</summary>
    public static Tensor BoostRefusals(Tensor probs, Tensor refusalIds, double lambdaBoost) =>
        ScaleAndRenormalize(probs, refusalIds, 1 + lambdaBoost);

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
}

/// <summary>
/// VCD's diffusion-style noise on a processed pixel tensor: x_t = √ᾱ_t·x + √(1−ᾱ_t)·ε with the 1000-step sigmoid
/// β schedule. With <see cref="Apply"/>'s CPU generator seeded as torch.manual_seed(seed) it reproduces PyTorch's
/// <c>randn_like</c> draws exactly.
/// </summary>
public static class VcdNoise
{
    /// <summary>Number of steps of the noise schedule.</summary>
    public const int Steps = 1000;

    /// <summary>ᾱ_t of the schedule (float32 math as in the reference).</summary>
    public static float AlphaBar(int step)
    {
        if (step < 0 || step >= Steps) throw new ArgumentOutOfRangeException(nameof(step), $"noise step must be in [0, {Steps})");
        using var scope = NewDisposeScope();
        using var span = (0.5e-2 - 1e-5).ToScalar();
        using var floor = 1e-5.ToScalar();
        var betas = (linspace(-6, 6, Steps, ScalarType.Float32).sigmoid() * span).Plus(floor);
        var aBar = betas.negative().Plus(Scalars.One).cumprod(0, ScalarType.Float32); // 1 − β, as TorchSharp computes it
        return aBar[step].item<float>();
    }

    /// <summary>Noises <paramref name="pixels"/> (any shape, computed in float32 on the CPU for reproducibility, returned in its dtype/device).</summary>
    public static Tensor Apply(Tensor pixels, int step, long seed)
    {
        using var scope = NewDisposeScope();
        var aBar = AlphaBar(step);
        var x = pixels.to(ScalarType.Float32).cpu();
        using var gen = new torch.Generator((ulong)seed);
        var noise = randn(x.shape, ScalarType.Float32, generator: gen);
        using var keep = MathF.Sqrt(aBar).ToScalar();
        using var mix = MathF.Sqrt(1 - aBar).ToScalar();
        var y = (x * keep).Plus(noise * mix);
        return y.to(pixels.dtype).to(pixels.device).MoveToOuterDisposeScope();
    }
}
