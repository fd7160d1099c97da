using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Processing.Images;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Noise;

/// <summary>
/// SafeCoDe's noised view (the reference's apply_gaussian_noise): the RGB image scaled to [0, 1], plus
/// N(0, σ²) per pixel and channel drawn in height × width × channel order, clamped, scaled back and rounded to 8 bits,
/// before the family's preprocessing. A seed fixes the draw (a CPU generator, as torch.manual_seed would).
/// </summary>
public static class PixelNoise
{
    /// <summary>Returns a noised copy of <paramref name="image"/>; the input is not changed.</summary>
    /// <param name="image">The decoded RGB image.</param>
    /// <param name="std">σ on the [0, 1] scale.</param>
    /// <param name="seed">Seed of the CPU generator.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="std"/> is negative.</exception>
    public static RgbImage Apply(RgbImage image, double std, long seed)
    {
        if (std < 0) throw new ArgumentOutOfRangeException(nameof(std), "noise std must be ≥ 0");
        using var scope = NewDisposeScope();
        // the reference's expression, ((x/255 + n·σ).clamp(0, 1)·255).round(), with every step after the first in
        // place (bit-identical to the out-of-place ops) and the bytes copied out as one block, not element by element
        var x = tensor(image.Pixels, ScalarType.Byte).view(image.Height, image.Width, 3).to(ScalarType.Float32).div_(Scalars.Byte255Float);
        using var gen = new torch.Generator((ulong)seed);
        using var sigma = ((float)std).ToScalar();
        var noise = randn(x.shape, ScalarType.Float32, generator: gen).mul_(sigma);
        var y = x.PlusInPlace(noise).clamp_(Scalars.ZeroDouble, Scalars.OneDouble).mul_(Scalars.Byte255Float).round_().to(ScalarType.Byte);
        var result = new RgbImage(image.Width, image.Height);
        y.bytes.CopyTo(result.Pixels);
        return result;
    }
}
