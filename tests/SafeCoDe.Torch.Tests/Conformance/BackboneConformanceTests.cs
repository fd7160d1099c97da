using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Tests.Generation;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Verification;
using TorchSharp;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Conformance;

/// <summary>
/// The one suite every backbone family passes. Adding a family = one line in <see cref="Families"/> (its fixture
/// folders under weights/fixtures) once its backbone exists.
/// </summary>
[TestFixtureSource(nameof(Families))]
public class BackboneConformanceTests(string family, string[] variants)
{
    public static readonly object[] Families =
    [
        new object[] { ModelFamilies.Llava, new[] { "hub", "v5" } },
        new object[] { ModelFamilies.LlavaNext, new[] { "hub", "v5" } },
        new object[] { ModelFamilies.Qwen2VL, new[] { "hub", "v5" } },
        new object[] { ModelFamilies.Qwen25VL, new[] { "hub", "v5" } },
        new object[] { ModelFamilies.InstructBlip, new[] { "v5" } },
        new object[] { ModelFamilies.Idefics, new[] { "hub", "v5" } },
        new object[] { ModelFamilies.Idefics3, new[] { "hub", "v5" } },
    ];

    private IBackbone _model = null!;
    private ModelDirectory _dir = null!;
    private BackboneInputs _real = null!, _noised = null!;
    private readonly List<Tensor> _owned = [];

    public static string FixtureDir(string family, string variant) => Path.Combine(TestPaths.Root, "weights", "fixtures", family, variant);

    [OneTimeSetUp]
    public void Load()
    {
        _dir = ModelDirectory.Open(FixtureDir(family, variants[0]));
        _model = Backbones.Load(_dir, CPU, ScalarType.Float32);
        (_real, _noised) = ReferenceInputs(_dir.Dir, _owned);
    }

    [OneTimeTearDown]
    public void Unload()
    {
        _model?.Dispose();
        foreach (var t in _owned) t.Dispose();
    }

    /// <summary>The reference file's inputs as two single-row batches: the real image and the noised one.</summary>
    public static (BackboneInputs real, BackboneInputs noised) ReferenceInputs(string dir, List<Tensor> owned)
    {
        var f = SafetensorsFile.Open(Path.Combine(dir, "reference.safetensors"));
        Tensor R(string n) { var t = f.Read(n); owned.Add(t); return t; }
        var skip = new HashSet<string> { "logits", "logits_noised", "generated_ids", "pixel_values_noised", "input_ids", "attention_mask" };
        var images = f.Entries.Keys.Where(k => !skip.Contains(k)).ToDictionary(k => k, R);
        var ids = R("input_ids");
        var mask = f.Entries.ContainsKey("attention_mask") ? R("attention_mask") : null;
        var real = new BackboneInputs(ids, mask, images);
        var noisedImages = new Dictionary<string, Tensor>(images) { ["pixel_values"] = R("pixel_values_noised") };
        return (real, new BackboneInputs(ids, mask, noisedImages));
    }


    [Test]
    public void FixtureParity_EveryVariant()
    {
        foreach (var variant in variants)
        {
            var r = Verifier.Run(FixtureDir(family, variant), null, CPU, ScalarType.Float32);
            TestContext.Out.WriteLine($"{variant}: {r.SummaryLine()}");
            Assert.That(r.LogitsRelErr, Is.LessThanOrEqualTo(1e-4), variant);
            Assert.That(r.NoisedRelErr, Is.Not.Null.And.LessThanOrEqualTo(1e-4), variant);
            Assert.That(r.GreedyOurs, Is.EqualTo(r.GreedyReference), variant);
            Assert.That(r.Pass, Is.True, variant);
        }
    }

    [Test]
    public void BatchOfRealAndNoisedBranches_EqualsTwoBatchOneRuns()
    {
        using var scope = NewDisposeScope();
        var pad = _dir.Config.Text.PadTokenId ?? 0;
        var batch = BatchCollator.Collate([_real, _noised], pad);
        var (s2, l2) = _model.Prefill(batch, 4, allLogits: true);
        var (sr, lr) = _model.Prefill(_real, 4, allLogits: true);
        var (sn, ln) = _model.Prefill(_noised, 4, allLogits: true);
        using (s2) using (sr) using (sn)
        {
            Assert.That(RelErr(l2[0], lr[0]), Is.LessThan(1e-5), "real row");
            Assert.That(RelErr(l2[1], ln[0]), Is.LessThan(1e-5), "noised row");
            Assert.That(RelErr(lr[0], ln[0]), Is.GreaterThan(1e-3), "the two branches must differ (the image matters)");
            // a few decode steps, both ways
            var t = tensor(new long[] { 5, 7 });
            for (int i = 0; i < 3; i++)
            {
                var b2 = _model.Step(s2, t);
                var br = _model.Step(sr, t.narrow(0, 0, 1));
                var bn = _model.Step(sn, t.narrow(0, 1, 1));
                Assert.That(RelErr(b2[0], br[0]), Is.LessThan(1e-5), $"step {i} real");
                Assert.That(RelErr(b2[1], bn[0]), Is.LessThan(1e-5), $"step {i} noised");
                t = b2.argmax(1);
            }
        }
    }

    [Test]
    public void CachedDecoding_EqualsFullRecompute()
    {
        using var scope = NewDisposeScope();
        const int n = 6;
        var (state, logits) = _model.Prefill(_real, n);
        var stepLogits = new List<Tensor> { logits };
        var tokens = new List<long>();
        using (state)
        {
            for (int i = 0; i < n; i++)
            {
                var tok = stepLogits[^1].argmax(1);
                tokens.Add(tok.item<long>());
                if (i < n - 1) stepLogits.Add(_model.Step(state, tok));
            }
        }
        // full recompute of prompt + generated tokens (no cache reuse)
        var ext = Extend(_real, tokens.Take(n - 1).ToArray());
        var (s2, all) = _model.Prefill(ext, 0, allLogits: true);
        s2.Dispose();
        long t0 = _real.SeqLen - 1;
        for (int i = 0; i < n; i++)
            Assert.That(RelErr(stepLogits[i][0], all[0][t0 + i]), Is.LessThan(1e-5), $"position {i}");
    }

    [Test]
    public void DroppingARow_LeavesTheOtherRowsNextLogitsUnchanged()
    {
        using var scope = NewDisposeScope();
        var pad = _dir.Config.Text.PadTokenId ?? 0;
        var batch = BatchCollator.Collate([_real, _noised], pad);
        var first = tensor(new long[] { 9, 11 });
        var (keepBoth, _) = _model.Prefill(batch, 4);
        var (dropOne, _) = _model.Prefill(batch, 4);
        using (keepBoth) using (dropOne)
        {
            _model.Step(keepBoth, first);
            _model.Step(dropOne, first);
            dropOne.KeepRows([0]);
            Assert.That(dropOne.BatchSize, Is.EqualTo(1));
            var both = _model.Step(keepBoth, tensor(new long[] { 13, 17 }));
            var one = _model.Step(dropOne, tensor(new long[] { 13 }));
            Assert.That(one.shape, Is.EqualTo(new long[] { 1, _model.VocabSize }));
            Assert.That(RelErr(one[0], both[0]), Is.LessThan(1e-5));
        }
    }

    [Test]
    public void LeftPaddedRowsOfDifferentLengths_EqualBatchOneRuns()
    {
        using var scope = NewDisposeScope();
        var pad = _dir.Config.Text.PadTokenId ?? 0;
        var longer = Prepend(_noised, 3, 4L);
        var batch = BatchCollator.Collate([_real, longer], pad);
        Assert.That(batch.AttentionMask!.sum().item<long>(), Is.EqualTo(_real.SeqLen + longer.SeqLen), "row 0 is left-padded");
        var (s2, l2) = _model.Prefill(batch, 3);
        var (s0, l0) = _model.Prefill(_real, 3);
        var (s1, l1) = _model.Prefill(longer, 3);
        using (s2) using (s0) using (s1)
        {
            Assert.That(RelErr(l2[0], l0[0]), Is.LessThan(1e-5), "padded row");
            Assert.That(RelErr(l2[1], l1[0]), Is.LessThan(1e-5), "longer row");
            var t = tensor(new long[] { 21, 23 });
            var n2 = _model.Step(s2, t);
            Assert.That(RelErr(n2[0], _model.Step(s0, t.narrow(0, 0, 1))[0]), Is.LessThan(1e-5), "padded row, step");
            Assert.That(RelErr(n2[1], _model.Step(s1, t.narrow(0, 1, 1))[0]), Is.LessThan(1e-5), "longer row, step");
        }
    }

    [Test]
    public void LiveTensorCount_ReturnsToBaseline_After200Generations()
    {
        var pad = _dir.Config.Text.PadTokenId ?? 0;
        var batch = BatchCollator.Collate([_real, _noised], pad);
        _owned.Add(batch.InputIds); _owned.Add(batch.AttentionMask!);
        _owned.AddRange(batch.Images.Values);
        var opts = new SamplingOptions { MaxNewTokens = 3, Temperature = 0.8, TopK = 20, TopP = 0.9, Seed = 1 };
        // warm-up: lazily created, cached tensors (rotary inverse frequencies) are not leaks
        TokenGenerator.Generate(_model, _real, opts);
        long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (var probe = zeros(1))
            Assert.That(DisposeScopeManager.Statistics.ThreadTotalLiveCount, Is.EqualTo(baseline + 1), "the counter sees live tensors");
        for (int i = 0; i < 200; i++)
        {
            if (i % 2 == 0) TokenGenerator.Generate(_model, _real, opts with { Seed = i });
            else
            {
                var (state, logits) = _model.Prefill(batch, 2);
                using (state) using (logits)
                {
                    using var tok = logits.argmax(1);
                    state.KeepRows([0]);
                    using var one = tok.narrow(0, 0, 1);
                    using var next = _model.Step(state, one);
                }
            }
        }
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.That(after, Is.EqualTo(baseline), $"live tensors: {baseline} before, {after} after 200 generations");
    }

    /// <summary>Appends tokens to a single-row batch (token-aligned image inputs repeat their last position).</summary>
    private static BackboneInputs Extend(BackboneInputs b, long[] tokens)
    {
        var add = tensor(tokens).view(1, -1);
        var ids = cat([b.InputIds, add], 1);
        var mask = cat([b.AttentionMask ?? ones_like(b.InputIds), ones_like(add)], 1);
        var images = b.Images.ToDictionary(kv => kv.Key, kv => BatchCollator.TokenAligned.Contains(kv.Key)
            ? cat([kv.Value, kv.Value.narrow(1, kv.Value.shape[1] - 1, 1).expand_as_rows(tokens.Length)], 1)
            : kv.Value);
        return new BackboneInputs(ids, mask, images);
    }

    /// <summary>Prepends <paramref name="n"/> real text tokens to a single-row batch (token-aligned inputs get zeros).</summary>
    private static BackboneInputs Prepend(BackboneInputs b, int n, long tokenId)
    {
        var add = full(1, n, tokenId, ScalarType.Int64);
        var ids = cat([add, b.InputIds], 1);
        var mask = cat([ones_like(add), b.AttentionMask ?? ones_like(b.InputIds)], 1);
        var images = b.Images.ToDictionary(kv => kv.Key, kv => BatchCollator.TokenAligned.Contains(kv.Key)
            ? BatchCollator.LeftPad(kv.Value, kv.Value.shape[1] + n, 0)
            : kv.Value);
        return new BackboneInputs(ids, mask, images);
    }
}

internal static class TensorTestExtensions
{
    /// <summary>[B, 1, …] → [B, n, …] by repetition along axis 1.</summary>
    public static Tensor expand_as_rows(this Tensor t, int n)
    {
        var shape = t.shape.ToArray();
        shape[1] = n;
        return t.expand(shape);
    }
}
