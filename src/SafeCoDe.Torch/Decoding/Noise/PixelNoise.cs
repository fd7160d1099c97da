using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Processing.Images;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Noise;

/// <summary>
/// SafeCoDe's noised view (the reference's apply_gaussian_noise): the RGB image scaled to [0, 1], plus
/// N(0, σ²) per pixel and channel drawn in height × width × channel order, clamped, scaled back and rounded to 8 bits,
/// before the family's preprocessing. A seed fixes the draw (a CPU generator, as torch.manual_seed would). The draw
/// goes a chunk at a time, with the same numbers as one draw over the whole image.
/// </summary>
public static class PixelNoise
{
    /// <summary>Values drawn at a time: 4 MiB of floats, so a 40-megapixel image needs no 1.4 GB of float tensors.</summary>
    internal const long ChunkValues = 1L << 20;

    /// <summary>Returns a noised copy of <paramref name="image"/>; the input is not changed.</summary>
    /// <param name="image">The decoded RGB image.</param>
    /// <param name="std">σ on the [0, 1] scale.</param>
    /// <param name="seed">Seed of the CPU generator.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="std"/> is negative.</exception>
    public static RgbImage Apply(RgbImage image, double std, long seed) => Apply(image, std, seed, ChunkValues);

    /// <summary>
    /// <see cref="Apply(RgbImage, double, long)"/> drawn <paramref name="chunk"/> values at a time (a multiple of 16).
    /// libtorch's CPU normal draw takes one uniform per value in order and turns them into normals 16 at a time (a
    /// tensor whose size is not a multiple of 16 redraws its last 16), so chunks of whole 16s, the last one holding
    /// at least 16 values, give exactly the numbers of one draw over the whole image.
    /// </summary>
    internal static RgbImage Apply(RgbImage image, double std, long seed, long chunk)
    {
        if (std < 0) throw new ArgumentOutOfRangeException(nameof(std), "noise std must be ≥ 0");
        if (chunk < 16 || chunk % 16 != 0) throw new ArgumentOutOfRangeException(nameof(chunk), "a whole number of 16s");
        var result = new RgbImage(image.Width, image.Height);
        using var gen = new torch.Generator((ulong)seed);
        using var sigma = ((float)std).ToScalar();
        long total = image.Pixels.LongLength;
        // one native staging buffer for the whole image: no managed garbage per chunk
        using var staging = empty([Math.Min(total, 2 * chunk)], ScalarType.Byte);
        for (long start = 0; start < total;)
        {
            long n = total - start < 2 * chunk ? total - start : chunk; // the last chunk takes the rest (≥ 16 values)
            using var scope = NewDisposeScope();
            image.Pixels.AsSpan((int)start, (int)n).CopyTo(staging.bytes);
            // the reference's expression, ((x/255 + n·σ).clamp(0, 1)·255).round(), with every step after the first in
            // place (bit-identical to the out-of-place ops) and the bytes copied out as one block, not element by element
            var x = staging.narrow(0, 0, n).to(ScalarType.Float32).div_(Scalars.Byte255Float);
            var noise = randn([n], ScalarType.Float32, generator: gen).mul_(sigma);
            var y = x.PlusInPlace(noise).clamp_(Scalars.ZeroDouble, Scalars.OneDouble).mul_(Scalars.Byte255Float).round_().to(ScalarType.Byte);
            y.bytes.CopyTo(result.Pixels.AsSpan((int)start, (int)n));
            start += n;
        }
        return result;
    }
}
