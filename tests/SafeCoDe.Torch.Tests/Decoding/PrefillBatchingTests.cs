using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Tests.Conformance;
using TorchSharp;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Decoding;

/// <summary>
/// Prompts of several requests prefilled as one left-padded batch (<see cref="DecoderBackbone.PrefillParts"/>, what
/// the engine's prefill batcher runs) equal each request prefilled alone — logits, cache contents and the greedy
/// tokens that follow — with ragged prompt lengths, guided (two-row) and vanilla (one-row) requests mixed.
/// </summary>
[TestFixture(ModelFamilies.Llava)]
[TestFixture(ModelFamilies.LlavaNext)]
public class PrefillBatchingTests(string family)
{
    private const double Tolerance = 1e-5;

    [Test]
    public void PromptsPrefilledTogether_EqualEachPrefilledAlone()
    {
        var owned = new List<Tensor>();
        var dir = ModelDirectory.Open(BackboneConformanceTests.FixtureDir(family, "hub"));
        using var model = (DecoderBackbone)Backbones.Load(dir, CPU, ScalarType.Float32);
        Assert.That(model.PrefillsTogether, Is.True);
        long pad = dir.Config.Text.PadTokenId ?? 0;
        var (real, noised) = BackboneConformanceTests.ReferenceInputs(dir.Dir, owned);
        using var scope = NewDisposeScope();
        // three requests: the reference prompt guided, a 5-token longer one guided, a 2-token longer one vanilla
        BackboneInputs[][] requests = [[real, noised], [Longer(real, 5), Longer(noised, 5)], [Longer(real, 2)]];
        const int maxNew = 8;
        var together = model.PrefillParts(BatchCollator.Collate(requests.SelectMany(r => r).ToList(), pad), maxNew, requests.Select(r => r.Length).ToList());
        var alone = requests.Select(r => model.Prefill(r.Length == 1 ? r[0] : BatchCollator.Collate(r, pad), maxNew)).ToList();
        try
        {
            long longest = requests.Max(r => r[0].SeqLen);
            for (int i = 0; i < requests.Length; i++)
            {
                var (st, lt) = ((CausalDecodeState)together[i].State, together[i].Logits);
                var (sa, la) = ((CausalDecodeState)alone[i].State, alone[i].Logits);
                Assert.That(lt.shape, Is.EqualTo(la.shape), $"request {i}: one logits row per branch");
                Assert.That(RelErr(lt, la), Is.LessThanOrEqualTo(Tolerance), $"request {i}: prefill logits");
                Assert.That(lt.argmax(1).equal(la.argmax(1)).all().item<bool>(), Is.True, $"request {i}: first greedy tokens");
                long t = requests[i][0].SeqLen, padding = longest - t;
                Assert.That(st.Length, Is.EqualTo(longest), "every part has the batch's length");
                Assert.That(st.KeyValid.narrow(1, 0, padding).any().item<bool>(), Is.False, $"request {i}: its left padding is masked");
                Assert.That(st.KeyValid.narrow(1, padding, t).all().item<bool>(), Is.True, $"request {i}: its prompt is attended");
                Assert.That(st.NextPosition.equal(sa.NextPosition).all().item<bool>(), Is.True, $"request {i}: next positions");
                for (int layer = 0; layer < st.Caches.Count; layer++)
                {
                    Assert.That(RelErr(st.Caches[layer].K.narrow(2, padding, t), sa.Caches[layer].K.narrow(2, 0, t)), Is.LessThanOrEqualTo(Tolerance), $"request {i}, layer {layer}: keys");
                    Assert.That(RelErr(st.Caches[layer].V.narrow(2, padding, t), sa.Caches[layer].V.narrow(2, 0, t)), Is.LessThanOrEqualTo(Tolerance), $"request {i}, layer {layer}: values");
                }
                // greedy decoding from both states: same tokens, logits within tolerance
                Tensor tokT = lt.argmax(1), tokA = la.argmax(1);
                for (int step = 0; step < maxNew; step++)
                {
                    var nt = model.Step(st, tokT);
                    var na = model.Step(sa, tokA);
                    Assert.That(RelErr(nt, na), Is.LessThanOrEqualTo(Tolerance), $"request {i}, step {step}: logits");
                    (tokT, tokA) = (nt.argmax(1), na.argmax(1));
                    Assert.That(tokT.equal(tokA).all().item<bool>(), Is.True, $"request {i}, step {step}: greedy tokens");
                }
            }
        }
        finally
        {
            foreach (var (s, l) in together.Concat(alone)) { s.Dispose(); l.Dispose(); }
            foreach (var o in owned) o.Dispose();
        }
    }

    [Test]
    public void PartsSteppedTogether_AttendAsOneSegment_AndEqualEachSteppedAlone()
    {
        var owned = new List<Tensor>();
        var dir = ModelDirectory.Open(BackboneConformanceTests.FixtureDir(family, "hub"));
        using var model = (DecoderBackbone)Backbones.Load(dir, CPU, ScalarType.Float32);
        long pad = dir.Config.Text.PadTokenId ?? 0;
        var (real, noised) = BackboneConformanceTests.ReferenceInputs(dir.Dir, owned);
        using var scope = NewDisposeScope();
        // two guided requests (two rows each), then two one-row ones: runs of equal row counts merge
        BackboneInputs[][] requests = [[real, noised], [Longer(real, 5), Longer(noised, 5)], [Longer(real, 2)], [real]];
        const int maxNew = 8;
        var parts = model.PrefillParts(BatchCollator.Collate(requests.SelectMany(r => r).ToList(), pad), maxNew, requests.Select(r => r.Length).ToList());
        var alone = requests.Select(r => model.Prefill(r.Length == 1 ? r[0] : BatchCollator.Collate(r, pad), maxNew)).ToList();
        try
        {
            var tokens = alone.Select(a => a.Logits.argmax(1)).ToList();
            var live = new List<int> { 3, 1, 0, 2 }; // any order: the batcher's InCacheOrder puts them in storage order
            var stats = DisposeScopeManager.Statistics;
            for (int step = 0; step < 6; step++)
            {
                if (step == 2)
                    foreach (int i in new[] { 0, 1 }) { parts[i].State.KeepRows([0]); alone[i].State.KeepRows([0]); tokens[i] = tokens[i].narrow(0, 0, 1); }
                if (step == 4) live.Remove(1); // a request leaves
                var order = DecoderBackbone.InCacheOrder(live, i => parts[i].State);
                Assert.That(order, Is.EqualTo(live.Order().ToList()), "storage order");
                long t0 = stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount;
                var got = model.StaticStepMany(order.Select(i => parts[i].State).ToList(), order.Select(i => tokens[i]).ToList());
                long merged = stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount - t0;
                var expected = order.Select(i => model.StaticStep(alone[i].State, tokens[i])).ToArray();
                for (int k = 0; k < order.Count; k++)
                {
                    int i = order[k];
                    Assert.That(got[k].shape, Is.EqualTo(expected[k].shape), $"step {step}, request {i}: rows");
                    Assert.That(RelErr(got[k], expected[k]), Is.LessThanOrEqualTo(Tolerance), $"step {step}, request {i}: logits");
                    Assert.That(got[k].argmax(1).equal(expected[k].argmax(1)).all().item<bool>(), Is.True, $"step {step}, request {i}: greedy tokens");
                    tokens[i] = expected[k].argmax(1);
                }
                if (step == 1)
                {
                    // the same states stepped one segment each (separate storages, static buffers made by a first step)
                    // create more tensors: the runs merged
                    var copies = requests.Select(r => model.Prefill(r.Length == 1 ? r[0] : BatchCollator.Collate(r, pad), maxNew)).ToList();
                    var warm = model.StaticStepMany(order.Select(i => copies[i].State).ToList(), order.Select(i => tokens[i]).ToList());
                    long t1 = stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount;
                    model.StaticStepMany(order.Select(i => copies[i].State).ToList(), order.Select(i => tokens[i]).ToList());
                    long separate = stats.CreatedInScopeCount + stats.CreatedOutsideScopeCount - t1;
                    Assert.That(merged, Is.LessThan(separate), $"tensors per step: merged {merged}, one segment per state {separate}");
                    foreach (var (s, l) in copies) { s.Dispose(); l.Dispose(); }
                }
            }
        }
        finally
        {
            foreach (var (s, l) in parts.Concat(alone)) { s.Dispose(); l.Dispose(); }
            foreach (var o in owned) o.Dispose();
        }
    }

    [Test]
    public void RowCountsThatDoNotSplitTheBatch_AreRejected()
    {
        var owned = new List<Tensor>();
        var dir = ModelDirectory.Open(BackboneConformanceTests.FixtureDir(family, "hub"));
        using var model = (DecoderBackbone)Backbones.Load(dir, CPU, ScalarType.Float32);
        var (real, noised) = BackboneConformanceTests.ReferenceInputs(dir.Dir, owned);
        using var scope = NewDisposeScope();
        var batch = BatchCollator.Collate([real, noised], dir.Config.Text.PadTokenId ?? 0);
        try
        {
            Assert.That(() => model.PrefillParts(batch, 4, [1]), Throws.ArgumentException);
            Assert.That(() => model.PrefillParts(batch, 4, [2, 0]), Throws.ArgumentException);
        }
        finally { foreach (var o in owned) o.Dispose(); }
    }

    /// <summary>The prompt with <paramref name="extra"/> copies of its last token inserted after the first one (a longer text part, same images).</summary>
    private static BackboneInputs Longer(BackboneInputs p, int extra)
    {
        var ids = p.InputIds;
        var filler = ids.narrow(1, ids.shape[1] - 1, 1).expand(ids.shape[0], extra);
        var longer = cat([ids.narrow(1, 0, 1), filler, ids.narrow(1, 1, ids.shape[1] - 1)], 1);
        var images = p.Images.ToDictionary(kv => kv.Key, kv => BatchCollator.TokenAligned.Contains(kv.Key)
            ? cat([kv.Value.narrow(1, 0, 1), zeros_like(kv.Value.narrow(1, 0, 1)).expand(-1, extra), kv.Value.narrow(1, 1, kv.Value.shape[1] - 1)], 1)
            : kv.Value);
        return new BackboneInputs(longer, null, images);
    }
}
