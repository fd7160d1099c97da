using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Tests.Generation;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Qwen;
using SafeCoDe.Torch.Tests.Conformance;
using TorchSharp;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Models.Qwen;

/// <summary>
/// Several images in one prompt and images of different sizes in one batch, for both Qwen families. Ground truth:
/// TestData/Qwen/KIND_multi.safetensors, made by HF transformers 5.17 with tools/fixtures/make_qwen_extra.py from the
/// fixture weights: three images of random pixel patches with grids (1,4,6), (1,2,2), (1,8,4); row 0 holds the first two
/// images, row 1 the third, left-padded to one length; HF's logits for the batch and for each row alone, and HF's greedy
/// continuation of the batch.
/// </summary>
[TestFixture(ModelFamilies.Qwen2VL)]
[TestFixture(ModelFamilies.Qwen25VL)]
public class QwenMultiImageTests(string family)
{
    private IBackbone _model = null!;
    private SafetensorsFile _ref = null!;
    private readonly List<Tensor> _owned = [];
    private BackboneInputs _batch = null!, _row0 = null!, _row1 = null!;
    private long _len0, _len1;

    [OneTimeSetUp]
    public void Load()
    {
        _model = Backbones.Load(BackboneConformanceTests.FixtureDir(family, "v5"), CPU, ScalarType.Float32);
        _ref = SafetensorsFile.Open(TestPaths.TestData("Qwen", family + "_multi.safetensors"));
        Tensor R(string n) { var t = _ref.Read(n); _owned.Add(t); return t; }
        var ids = R("input_ids"); var mask = R("attention_mask"); var pixels = R("pixel_values");
        var grids = R("image_grid_thw"); var types = R("mm_token_type_ids");
        _batch = new BackboneInputs(ids, mask, new Dictionary<string, Tensor>
        {
            ["pixel_values"] = pixels, ["image_grid_thw"] = grids, ["mm_token_type_ids"] = types,
        });
        _len0 = mask[0].sum().item<long>(); _len1 = mask[1].sum().item<long>();
        long seq = ids.shape[1];
        long patches0 = grids.narrow(0, 0, 2).prod(1).sum().item<long>();
        BackboneInputs Row(int r, long len, long p0, long pn, long g0, long gn) => new(
            Own(ids[r].narrow(0, seq - len, len).unsqueeze(0)), Own(ones(1, len, ScalarType.Int64)),
            new Dictionary<string, Tensor>
            {
                ["pixel_values"] = Own(pixels.narrow(0, p0, pn)), ["image_grid_thw"] = Own(grids.narrow(0, g0, gn)),
                ["mm_token_type_ids"] = Own(types[r].narrow(0, seq - len, len).unsqueeze(0)),
            });
        _row0 = Row(0, _len0, 0, patches0, 0, 2);
        _row1 = Row(1, _len1, patches0, pixels.shape[0] - patches0, 2, 1);
    }

    private Tensor Own(Tensor t) { _owned.Add(t); return t; }

    [OneTimeTearDown]
    public void Unload()
    {
        _model?.Dispose();
        foreach (var t in _owned) t.Dispose();
    }


    [Test]
    public void FixtureHasTwoImagesInRowZeroAndDifferentGrids()
    {
        Assert.That(_row0.Images["image_grid_thw"].shape[0], Is.EqualTo(2));
        using var g = _batch.Images["image_grid_thw"].prod(1);
        Assert.That(g.data<long>().ToArray().Distinct().Count(), Is.EqualTo(3), "three different grid sizes");
        Assert.That(_len0, Is.Not.EqualTo(_len1), "the rows differ in length, so one is left-padded");
    }

    [Test]
    public void TwoImagesInOnePrompt_MatchHF()
    {
        using var scope = NewDisposeScope();
        var (s, logits) = _model.Prefill(_row0, 0, allLogits: true);
        s.Dispose();
        var hf = _ref.Read("row0_logits");
        Assert.That(RelErr(logits, hf), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void OneImagePrompt_OtherGrid_MatchesHF()
    {
        using var scope = NewDisposeScope();
        var (s, logits) = _model.Prefill(_row1, 0, allLogits: true);
        s.Dispose();
        Assert.That(RelErr(logits, _ref.Read("row1_logits")), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void MixedImageSizesInOneBatch_EachRowEqualsItsBatchOneRun_AndHF()
    {
        using var scope = NewDisposeScope();
        long seq = _batch.SeqLen;
        var (sb, lb) = _model.Prefill(_batch, 4, allLogits: true);
        var (s0, l0) = _model.Prefill(_row0, 4, allLogits: true);
        var (s1, l1) = _model.Prefill(_row1, 4, allLogits: true);
        using (sb) using (s0) using (s1)
        {
            var b0 = lb[0].narrow(0, seq - _len0, _len0);
            var b1 = lb[1].narrow(0, seq - _len1, _len1);
            Assert.That(RelErr(b0, l0[0]), Is.LessThan(1e-5), "row 0 (two images) batched vs alone");
            Assert.That(RelErr(b1, l1[0]), Is.LessThan(1e-5), "row 1 (left-padded) batched vs alone");
            var hf = _ref.Read("logits");
            Assert.That(RelErr(b0, hf[0].narrow(0, seq - _len0, _len0)), Is.LessThanOrEqualTo(1e-4), "row 0 vs HF batch");
            Assert.That(RelErr(b1, hf[1].narrow(0, seq - _len1, _len1)), Is.LessThanOrEqualTo(1e-4), "row 1 vs HF batch");
            // decode steps: each row keeps its own M-RoPE offset
            var t = tensor(new long[] { 31, 37 });
            for (int i = 0; i < 4; i++)
            {
                var nb = _model.Step(sb, t);
                Assert.That(RelErr(nb[0], _model.Step(s0, t.narrow(0, 0, 1))[0]), Is.LessThan(1e-5), $"step {i} row 0");
                Assert.That(RelErr(nb[1], _model.Step(s1, t.narrow(0, 1, 1))[0]), Is.LessThan(1e-5), $"step {i} row 1");
                t = nb.argmax(1);
            }
        }
    }

    [Test]
    public void MixedImageSizesInOneBatch_GreedyMatchesHF()
    {
        var gen = _ref.Read("generated_ids");
        _owned.Add(gen);
        long seq = _batch.SeqLen, n = gen.shape[1] - seq;
        var r = TokenGenerator.Generate(_model, _batch, new SamplingOptions
        {
            MaxNewTokens = (int)n, MinNewTokens = (int)n, EosTokenIds = _model.Config.Text.EosTokenIds.Select(x => (long)x).ToArray(),
            PadTokenId = _model.Config.Text.PadTokenId ?? 0,
        });
        for (int row = 0; row < 2; row++)
        {
            using var expect = gen[row].narrow(0, seq, n);
            Assert.That(r.Tokens[row], Is.EqualTo(expect.data<long>().ToArray()), $"row {row}");
        }
    }

    [Test]
    public void VisionTower_EncodesEachImageIndependently()
    {
        // attention never crosses images (nor windows of different images): encoding the three images together equals
        // encoding them one by one
        using var scope = NewDisposeScope();
        var visual = ((QwenVLBackbone)_model).visual;
        var pixels = _batch.Images["pixel_values"];
        var g = _batch.Images["image_grid_thw"].data<long>().ToArray();
        var grids = Enumerable.Range(0, g.Length / 3).Select(i => (g[3 * i], g[3 * i + 1], g[3 * i + 2])).ToList();
        using var noGrad = no_grad();
        var all = visual.Forward(pixels, grids);
        var parts = new List<Tensor>();
        long offset = 0;
        foreach (var grid in grids)
        {
            long n = grid.Item1 * grid.Item2 * grid.Item3;
            parts.Add(visual.Forward(pixels.narrow(0, offset, n), [grid]));
            offset += n;
        }
        var separate = cat(parts, 0);
        Assert.That(all.shape, Is.EqualTo(new long[] { grids.Sum(x => x.Item1 * x.Item2 * x.Item3 / 4), _model.Config.Text.HiddenSize }));
        Assert.That(RelErr(all, separate), Is.LessThan(1e-5));
    }

    [Test]
    public void TwoRequestsInterleaved_DoNotInterfere()
    {
        // No per-sequence state on the module (HF keeps rope_deltas on it): the two prompts have different M-RoPE
        // offsets, and prefilling or stepping one request between the steps of another must not change either.
        using var scope = NewDisposeScope();
        var tok = tensor(new long[] { 41 });
        List<Tensor> Alone(BackboneInputs x)
        {
            var (s, first) = _model.Prefill(x, 3);
            using (s) return [first, .. Enumerable.Range(0, 3).Select(_ => _model.Step(s, tok))];
        }
        var refA = Alone(_row0);
        var refB = Alone(_row1);
        var (sa, fa) = _model.Prefill(_row0, 3);
        var (sb, fb) = _model.Prefill(_row1, 3);
        using (sa) using (sb)
        {
            Assert.That(RelErr(fa, refA[0]), Is.LessThan(1e-6), "prefill A");
            Assert.That(RelErr(fb, refB[0]), Is.LessThan(1e-6), "prefill B");
            for (int i = 1; i <= 3; i++)
            {
                Assert.That(RelErr(_model.Step(sa, tok), refA[i]), Is.LessThan(1e-6), $"step {i} of A");
                Assert.That(RelErr(_model.Step(sb, tok), refB[i]), Is.LessThan(1e-6), $"step {i} of B");
            }
        }
    }
}
