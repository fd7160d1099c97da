using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Decoding.Rules;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Decoding;

public class LogitsOpsTests
{
    private static float[] F(Tensor t) => t.to(ScalarType.Float32).cpu().data<float>().ToArray();

    [Test]
    public void SafeCoDeContrast_MatchesHandComputedValues()
    {
        using var zr = tensor(new float[] { 2f, 1f, -1f, 0.5f });
        using var zn = tensor(new float[] { 1f, 3f, -1f, 0f });
        using var c = LogitsOps.SafeCoDeContrast(zr, zn, 0.3);
        Assert.That(F(c), Is.EqualTo(new[] { 1.7f, 0.1f, -0.7f, 0.5f }).Within(1e-6f));
    }

    [Test]
    public void VcdContrast_AppliesTheFactorAndThePlausibilityCutoff()
    {
        // p_r ∝ exp(z_r): with β = 0.1 the cut-off is max z_r + ln 0.1 = 3 − 2.3026 = 0.6974
        using var zr = tensor(new float[] { 3f, 1f, 0.5f, 2.9f });
        using var zn = tensor(new float[] { 1f, 0f, 0f, 4f });
        using var c = VcdContrast.Contrast(zr, zn, 1.0, 0.1);
        var v = F(c);
        Assert.That(v[0], Is.EqualTo(2 * 3f - 1f).Within(1e-6f));
        Assert.That(v[1], Is.EqualTo(2 * 1f - 0f).Within(1e-6f));
        Assert.That(float.IsNegativeInfinity(v[2]), Is.True, "0.5 < 0.6974 is cut");
        Assert.That(v[3], Is.EqualTo(2 * 2.9f - 4f).Within(1e-5f));
    }

    [Test]
    public void Suppression_HalvesRefusalMassAtDefaultLambda_AndRenormalises()
    {
        using var p = tensor(new float[] { 0.4f, 0.3f, 0.2f, 0.1f });
        using var ids = tensor(new long[] { 0, 3 });
        using var s = LogitsOps.SuppressRefusals(p, ids, 1.0);
        // (0.2, 0.3, 0.2, 0.05) / 0.75
        Assert.That(F(s), Is.EqualTo(new[] { 0.2f / 0.75f, 0.3f / 0.75f, 0.2f / 0.75f, 0.05f / 0.75f }).Within(1e-6f));
        using var zero = LogitsOps.SuppressRefusals(p, ids, 2.0);
        Assert.That(F(zero)[0], Is.EqualTo(0f), "λ_supp = 2 removes refusal tokens");
    }

    [Test]
    public void Boost_MultipliesRefusalMassByOnePlusLambda()
    {
        using var p = tensor(new float[] { 0.5f, 0.25f, 0.25f });
        using var ids = tensor(new long[] { 1 });
        using var b = LogitsOps.BoostRefusals(p, ids, 1.0);
        Assert.That(F(b), Is.EqualTo(new[] { 0.5f / 1.25f, 0.5f / 1.25f, 0.25f / 1.25f }).Within(1e-6f));
    }

    [Test]
    public void TemperedDistribution_IsSoftmaxOfLogProbsOverT()
    {
        using var p = tensor(new float[] { 0.5f, 0.25f, 0.25f });
        using var t = LogitsOps.TemperedDistribution(p, 0.5);
        // p^(1/T) normalised: (0.25, 0.0625, 0.0625) / 0.375
        Assert.That(F(t), Is.EqualTo(new[] { 0.25f / 0.375f, 0.0625f / 0.375f, 0.0625f / 0.375f }).Within(1e-5f));
    }

    [Test]
    public void PhraseScores_SumTheProbabilitiesOfEachPhrasesTokens()
    {
        using var p = tensor(new float[] { 0.1f, 0.2f, 0.3f, 0.4f });
        using var phrases = tensor(new long[,] { { 0, 1, -1 }, { 3, -1, -1 }, { 2, 2, 1 } });
        using var s = LogitsOps.PhraseScores(p, phrases);
        Assert.That(F(s), Is.EqualTo(new[] { 0.3f, 0.4f, 0.8f }).Within(1e-6f));
    }

    [TestCase("llava/v5")]
    [TestCase("qwen2_vl/hub")]
    [TestCase("idefics/v5")]
    [TestCase("idefics3/hub")]
    public void VcdNoise_ReproducesTheFixturesNoisedPixels(string rel)
    {
        var f = SafetensorsFile.Open(Path.Combine(TestPaths.Root, "weights", "fixtures", rel, "reference.safetensors"));
        using var pv = f.Read("pixel_values");
        using var expected = f.Read("pixel_values_noised");
        using var ours = DiffusionNoise.Apply(pv, 500, 1234);
        using var diff = (ours - expected).abs().max();
        Assert.That(diff.item<float>(), Is.LessThanOrEqualTo(1e-6f));
        using var other = DiffusionNoise.Apply(pv, 500, 1235);
        using var d2 = (other - expected).abs().max();
        Assert.That(d2.item<float>(), Is.GreaterThan(0.1f), "another seed gives other noise");
    }

    [Test]
    public void VcdSchedule_MatchesTheKnownCoefficients()
    {
        // x_500 ≈ 0.863·x0 + 0.505·ε (VCD's schedule at t = 500)
        Assert.That(MathF.Sqrt(DiffusionNoise.AlphaBar(500)), Is.EqualTo(0.863f).Within(1e-3f));
        Assert.That(MathF.Sqrt(1 - DiffusionNoise.AlphaBar(500)), Is.EqualTo(0.505f).Within(1e-3f));
        Assert.That(MathF.Sqrt(DiffusionNoise.AlphaBar(999)), Is.EqualTo(0.285f).Within(1e-3f));
    }
}
