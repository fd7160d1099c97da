using SafeCoDe.Torch.Decoding.Noise;
using NUnit.Framework;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Tests.Decoding;

public class PixelNoiseTests
{
    [Test]
    public void SeededGaussianNoise_InPixelSpace_ClampedAndRounded()
    {
        var img = RgbImage.Filled(64, 48, 128, 128, 128);
        var a = PixelNoise.Apply(img, 0.1, 42);
        var b = PixelNoise.Apply(img, 0.1, 42);
        var c = PixelNoise.Apply(img, 0.1, 43);
        Assert.That(a.Pixels, Is.EqualTo(b.Pixels), "same seed, same noise");
        Assert.That(c.Pixels, Is.Not.EqualTo(a.Pixels));
        var d = a.Pixels.Select(p => p - 128.0).ToArray();
        double mean = d.Average(), std = Math.Sqrt(d.Select(x => (x - mean) * (x - mean)).Average());
        Assert.That(mean, Is.EqualTo(0).Within(1.0));
        Assert.That(std, Is.EqualTo(0.1 * 255).Within(1.0), "σ = 0.1 of the [0,1] range");
        Assert.That(img.Pixels.All(p => p == 128), Is.True, "the input is not modified");
        Assert.That(PixelNoise.Apply(img, 0, 1).Pixels, Is.EqualTo(img.Pixels), "σ = 0 changes nothing");
        var white = PixelNoise.Apply(RgbImage.Filled(8, 8, 255, 255, 255), 0.5, 1);
        Assert.That(white.Pixels.Max(), Is.EqualTo((byte)255), "clamped at 1.0");
    }
}

public class PixelNoiseChunkTests
{
    /// <summary>Drawn in chunks (bounded memory for large images), the noise is bit for bit one draw over the whole image.</summary>
    [TestCase(3, 1)]      // 9 values: fewer than 16, one draw
    [TestCase(16, 3)]     // 144 = 9 × 16
    [TestCase(37, 29)]    // 3,219: a tail that is not a whole 16
    [TestCase(640, 480)]
    public void ChunkedNoise_EqualsOneDrawOverTheWholeImage(int w, int h)
    {
        var rng = new Random(w * 1000 + h);
        var pixels = new byte[w * h * 3];
        rng.NextBytes(pixels);
        var img = new RgbImage(w, h, pixels);
        long whole = ((pixels.LongLength + 15) / 16 + 2) * 16;
        var reference = PixelNoise.Apply(img, 0.2, 7, whole);
        foreach (var chunk in new long[] { 16, 48, 1024, PixelNoise.ChunkValues })
            Assert.That(PixelNoise.Apply(img, 0.2, 7, chunk).Pixels, Is.EqualTo(reference.Pixels), $"chunks of {chunk}");
    }
}
