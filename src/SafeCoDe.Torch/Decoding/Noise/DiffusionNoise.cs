using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Noise;

/// <summary>
/// Diffusion-style forward noise on a processed pixel tensor, as visual contrastive decoding's reference code makes its
/// distorted view: x_t = √ᾱ_t·x + √(1−ᾱ_t)·ε with the 1000-step sigmoid β schedule. With <see cref="Apply"/>'s CPU
/// generator seeded as torch.manual_seed(seed) it reproduces PyTorch's <c>randn_like</c> draws exactly.
/// </summary>
public static class DiffusionNoise
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
