using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Idefics3;
using SafeCoDe.Torch.Tests.Conformance;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Models;

/// <summary>Idefics3 specifics: padding tiles, patch masks and their position ids, config defaults.</summary>
public class Idefics3Tests
{
    private static readonly string V5 = BackboneConformanceTests.FixtureDir(ModelFamilies.Idefics3, "v5");
    private readonly List<Tensor> _owned = [];
    private readonly List<string> _temp = [];

    [TearDown]
    public void CleanUp()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        foreach (var d in _temp) if (Directory.Exists(d)) Directory.Delete(d, true);
        _temp.Clear();
    }

    private static bool[,,] Mask(int side, int rows, int cols)
    {
        var m = new bool[1, side, side];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) m[0, r, c] = true;
        return m;
    }

    [Test]
    public void PositionIds_FullGrid_AreTheIdentity()
    {
        var ids = Idefics3VisionEmbeddings.PositionIds(Mask(4, 4, 4), 4, ScalarType.Float32);
        Assert.That(Enumerable.Range(0, 16).Select(i => ids[0, i]), Is.EqualTo(Enumerable.Range(0, 16).Select(i => (long)i)));
        // the SmolVLM grid (512/16 = 32 per side), in both dtypes
        foreach (var dt in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            var big = Idefics3VisionEmbeddings.PositionIds(Mask(32, 32, 32), 32, dt);
            Assert.That(Enumerable.Range(0, 1024).All(i => big[0, i] == i), Is.True, dt.ToString());
        }
    }

    [Test]
    public void PositionIds_PaddedTile_StretchTheValidRegionOverTheTable()
    {
        // 3 valid rows, 2 valid columns of a 4x4 grid: row coordinates 0, 1/3, 2/3 fall in buckets 0, 1, 2;
        // column coordinates 0, 1/2 in buckets 0 and 2 (1/2 sits on a boundary; right=True puts it above).
        var ids = Idefics3VisionEmbeddings.PositionIds(Mask(4, 3, 2), 4, ScalarType.Float32);
        var expected = new long[16];
        expected[0] = 0; expected[1] = 2;
        expected[4] = 4; expected[5] = 6;
        expected[8] = 8; expected[9] = 10; // everything else is padding → 0
        Assert.That(Enumerable.Range(0, 16).Select(i => ids[0, i]), Is.EqualTo(expected));
    }

    [Test]
    public void PositionIds_FollowEachPatchsOwnRowAndColumn_OutsideTheFirstRowAndColumnExtent()
    {
        // extents come from the first column (2 rows) and first row (2 columns); a stray valid patch at (3, 3)
        // sits at coordinate 1.5 → clamped below 1 → the last bucket, as transformers 5 computes it
        var m = Mask(4, 2, 2);
        m[0, 3, 3] = true;
        var ids = Idefics3VisionEmbeddings.PositionIds(m, 4, ScalarType.Float32);
        Assert.That(ids[0, 0], Is.EqualTo(0));
        Assert.That(ids[0, 1], Is.EqualTo(2));   // column coordinate 1/2: on the boundary, right=True → bucket 2
        Assert.That(ids[0, 5], Is.EqualTo(10));
        Assert.That(ids[0, 15], Is.EqualTo(15));
        Assert.That(ids[0, 14], Is.EqualTo(0), "padding");
    }

    /// <summary>
    /// HF transformers 5.17 logits (tools/fixtures/make_idefics3_padded.py) for the v5 fixture model on two rows:
    /// row 0 has patch masks that cut tiles at and between patch boundaries; row 1 has two tiles, three all-zero
    /// padding images and left padding.
    /// </summary>
    [Test]
    public void PartialPatchMasksAndPaddingImages_MatchHF([Values(ScalarType.Float32, ScalarType.BFloat16)] ScalarType dtype)
    {
        var f = SafetensorsFile.Open(TestPaths.TestData("idefics3", "padded_reference.safetensors"));
        Tensor R(string n, ScalarType? t = null) { var x = f.Read(n, t); _owned.Add(x); return x; }
        var mask = R("attention_mask");
        var inputs = new BackboneInputs(R("input_ids"), mask, new Dictionary<string, Tensor>
        {
            ["pixel_values"] = R("pixel_values", dtype), ["pixel_attention_mask"] = R("pixel_attention_mask"),
        });
        Assert.That(inputs.Image("pixel_attention_mask")!.sum().item<long>(), Is.LessThan(7L * 56 * 56), "the masks do cut tiles");
        using var model = Backbones.Load(V5, CPU, dtype);
        var (state, logits) = model.Prefill(inputs, 0, allLogits: true);
        state.Dispose();
        _owned.Add(logits);
        var reference = R("logits");
        var hfBf16 = R("logits_bf16");
        for (int row = 0; row < 2; row++)
        {
            using var valid = mask[row].nonzero().view(-1);
            using var ours = logits[row].index_select(0, valid);
            using var theirs = reference[row].index_select(0, valid);
            double rel = ((ours - theirs).norm() / theirs.norm()).item<float>();
            if (dtype == ScalarType.Float32)
            {
                TestContext.Out.WriteLine($"float32 row {row}: rel err {rel:0.00e0}");
                Assert.That(rel, Is.LessThanOrEqualTo(1e-4), $"row {row}");
                continue;
            }
            // bfloat16 rounding noise in these random weights is large and kernel-dependent, so the bar is HF's own
            // bfloat16 error against the same float32 logits
            using var hf = hfBf16[row].index_select(0, valid);
            double hfRel = ((hf - theirs).norm() / theirs.norm()).item<float>();
            TestContext.Out.WriteLine($"bfloat16 row {row}: ours {rel:0.00e0}, HF bfloat16 {hfRel:0.00e0}");
            Assert.That(rel, Is.LessThanOrEqualTo(1.5 * hfRel), $"row {row}");
        }
    }

    [Test]
    public void AllZeroTiles_AreDroppedAsBatchPadding()
    {
        var (real, _) = BackboneConformanceTests.ReferenceInputs(V5, _owned);
        using var model = Backbones.Load(V5, CPU, ScalarType.Float32);
        using var scope = NewDisposeScope();
        var pv = real.Image("pixel_values")!;           // [1, 5, 3, 56, 56]
        var pm = real.Image("pixel_attention_mask")!;   // [1, 5, 56, 56]
        var zeroTile = zeros([1, 1, 3, 56, 56]);
        var zeroMask = zeros([1, 1, 56, 56], pm.dtype);
        // padding in the middle and at the end, as HF pads rows with fewer images
        var pv2 = cat([pv.narrow(1, 0, 2), zeroTile, pv.narrow(1, 2, 3), zeroTile], 1);
        var pm2 = cat([pm.narrow(1, 0, 2), zeroMask, pm.narrow(1, 2, 3), zeroMask], 1);
        var padded = real with { Images = new Dictionary<string, Tensor> { ["pixel_values"] = pv2, ["pixel_attention_mask"] = pm2 } };
        var (s1, l1) = model.Prefill(real, 0, allLogits: true);
        var (s2, l2) = model.Prefill(padded, 0, allLogits: true);
        s1.Dispose(); s2.Dispose();
        Assert.That(((l2 - l1).norm() / l1.norm()).item<float>(), Is.LessThan(1e-6));
        // a zero tile that is not dropped would need 4 more image tokens: the count check names the mismatch
        var notZero = real with { Images = new Dictionary<string, Tensor> { ["pixel_values"] = cat([pv, zeroTile + 0.5], 1), ["pixel_attention_mask"] = cat([pm, ones_like(zeroMask)], 1) } };
        var ex = Assert.Throws<ArgumentException>(() => model.Prefill(notZero, 0));
        Assert.That(ex!.Message, Does.Contain("image tokens"));
    }

    [Test]
    public void PaddedPatches_AreNotAttendedTo()
    {
        // valid region: the top-left 2x2 patches (28x28 pixels) of one 56x56 tile (4x4 patches of 14)
        using var model = (Idefics3Backbone)Backbones.Load(V5, CPU, ScalarType.Float32);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (real, _) = BackboneConformanceTests.ReferenceInputs(V5, _owned);
        var tile = real.Image("pixel_values")!.narrow(1, 0, 1).clone(); // [1, 1, 3, 56, 56]
        var mask = zeros([1, 1, 56, 56], ScalarType.Int64);
        mask.narrow(2, 0, 28).narrow(3, 0, 28).fill_(1);
        var a = tile.clone(); a.narrow(3, 28, 28).fill_(0); a.narrow(4, 28, 28).fill_(0);
        var b = tile.clone(); b.narrow(3, 28, 28).fill_(0.7); b.narrow(4, 28, 28).fill_(-0.3);
        var fa = model.ImageFeatures(a, mask);
        var fb = model.ImageFeatures(b, mask);
        Assert.That(fa.shape, Is.EqualTo(new long[] { 1, 4, 64 }));
        // output token 0 = the pixel-shuffled 2x2 block of valid patches: independent of the padded pixels
        Assert.That(((fa[0, 0] - fb[0, 0]).norm() / fa[0, 0].norm()).item<float>(), Is.LessThan(1e-6));
        // token 3 is made of padding patches, which (as in HF) still run as queries and see the padded pixels
        Assert.That(((fa[0, 3] - fb[0, 3]).norm() / fa[0, 3].norm()).item<float>(), Is.GreaterThan(1e-3));
        // without the mask the valid block does see the padded pixels
        var ua = model.ImageFeatures(a, null);
        var ub = model.ImageFeatures(b, null);
        Assert.That(((ua[0, 0] - ub[0, 0]).norm() / ua[0, 0].norm()).item<float>(), Is.GreaterThan(1e-3));
    }

    [Test]
    public void PixelShuffle_MovesEachBlockOfNeighbouringPatchesIntoOneToken()
    {
        // 4x4 grid of 1-d features numbered by patch index; scale 2 → 4 tokens of 4 values
        var x = arange(16, dtype: ScalarType.Float32).view(1, 16, 1);
        var y = Idefics3Connector.PixelShuffle(x, 2);
        Assert.That(y.shape, Is.EqualTo(new long[] { 1, 4, 4 }));
        // token 0: rows 0-1 × cols 0-1, laid out row-major within the block
        Assert.That(y[0, 0].data<float>().ToArray(), Is.EqualTo(new float[] { 0, 1, 4, 5 }));
        Assert.That(y[0, 1].data<float>().ToArray(), Is.EqualTo(new float[] { 2, 3, 6, 7 }));
        Assert.That(y[0, 2].data<float>().ToArray(), Is.EqualTo(new float[] { 8, 9, 12, 13 }));
    }

    [Test]
    public void TextRmsNormEps_DefaultsLikeIdefics3Config()
    {
        var dir = TestPaths.NewTempDir();
        _temp.Add(dir);
        var json = File.ReadAllText(Path.Combine(V5, "config.json")).Replace("\"rms_norm_eps\": 1e-06,", "");
        File.WriteAllText(Path.Combine(dir, "config.json"), json);
        Assert.That(ModelConfig.Load(dir).Text.RmsNormEps, Is.EqualTo(1e-6), "a text_config dict takes LlamaConfig's default");
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"model_type\": \"idefics3\"}");
        var c = (Idefics3Config)ModelConfig.Load(dir);
        Assert.That(c.Text.RmsNormEps, Is.EqualTo(1e-5), "no text_config: Idefics3Config builds LlamaConfig(rms_norm_eps=1e-5)");
        Assert.That(c.ScaleFactor, Is.EqualTo(2));
        Assert.That(c.ImageTokenId, Is.EqualTo(128257));
    }
}
