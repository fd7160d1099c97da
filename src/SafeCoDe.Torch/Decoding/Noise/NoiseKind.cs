namespace SafeCoDe.Torch.Decoding.Noise;

/// <summary>Which noise makes a method's second (noised) branch.</summary>
public enum NoiseKind
{
    /// <summary>Gaussian noise on the raw RGB image (σ on [0,1]), clamped and re-quantised, before preprocessing (SafeCoDe's reference).</summary>
    Pixel,
    /// <summary>Diffusion forward noise on the processed pixel tensor (step t of the 1000-step sigmoid schedule, <see cref="DiffusionNoise"/>).</summary>
    Diffusion,
}
