using NUnit.Framework;
using SafeCoDe.Torch.Decoding.Scheduling;
using SafeCoDe.Torch.Tests.Decoding;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Conformance;

/// <summary>
/// IDEFICS v1's static step beyond its HF fixture (float gates, no q/k norms, a gated layer before every layer):
/// vector gates with q/k norms every second layer, rows that see no image, text-only requests, and requests with
/// different numbers of images stepped as rows of one batch — all against the eager reference step.
/// </summary>
public class IdeficsStaticStepTests
{
    private static readonly object[] Variants =
    [
        new object[] { "float", false, 1, ScalarType.Float32 },
        new object[] { "vector", true, 2, ScalarType.Float32 },
        new object[] { "vector", true, 2, ScalarType.BFloat16 },
    ];

    /// <summary>
    /// Two rows with two images each: generated tokens of the first row see the second image's latents only; the
    /// second row's mask lets none of its tokens see an image (its cross-attention is gated off).
    /// </summary>
    private static BackboneInputs PairWithABlindRow()
    {
        var p = IdeficsStepProbe.Prompt(2, 12, 2);
        using (var blind = p.Images["image_attention_mask"].select(0, 1)) blind.zero_();
        return p;
    }

    [TestCaseSource(nameof(Variants))]
    public void StaticStep_EqualsEagerStep_ForGateAndNormVariants(string alphaType, bool qkNorms, int interval, ScalarType dtype)
    {
        using var model = IdeficsStepProbe.CreateTiny(4, interval, CPU, dtype, alphaType, qkNorms);
        Assert.That(StepProbe.StepsStatically(model), Is.True);
        var prompt = PairWithABlindRow();
        try
        {
            var exact = StaticStepConformanceTests.Compare(model, prompt, 8, bucket: 1);
            Assert.That(exact.bitwise, Is.True, $"exact length: bitwise; worst rel err {exact.worst:g3}");
            var bucketed = StaticStepConformanceTests.Compare(model, prompt, 64, DecoderBackbone.DefaultBucket, forced: dtype != ScalarType.Float32);
            TestContext.Out.WriteLine($"idefics {alphaType} gates, qk norms {qkNorms}, interval {interval}, {dtype}: bucket rel err {bucketed.worst:g3}");
            Assert.That(bucketed.worst, Is.LessThanOrEqualTo(dtype == ScalarType.Float32 ? 1e-5 : 3e-2), "bucket length: relative error");
            Assert.That(bucketed.sameTokens, Is.True, "bucket length: greedy tokens over 64 steps");
        }
        finally { IdeficsStepProbe.Dispose(prompt); }
    }

    [Test]
    public void StaticStep_OfATextOnlyRequest_EqualsEagerStep()
    {
        using var model = IdeficsStepProbe.CreateTiny(4, 2, CPU, ScalarType.Float32, "vector", true);
        var prompt = IdeficsStepProbe.Prompt(1, 12, 0);
        try
        {
            var exact = StaticStepConformanceTests.Compare(model, prompt, 8, bucket: 1);
            Assert.That(exact.bitwise, Is.True, $"exact length: bitwise; worst rel err {exact.worst:g3}");
            var bucketed = StaticStepConformanceTests.Compare(model, prompt, 64, DecoderBackbone.DefaultBucket);
            Assert.That(bucketed.worst, Is.LessThanOrEqualTo(1e-5));
            Assert.That(bucketed.sameTokens, Is.True);
        }
        finally { IdeficsStepProbe.Dispose(prompt); }
    }

    /// <summary>
    /// Four requests join and leave one batch: a two-row request with two images whose second row sees none (it drops
    /// that row midway), a text-only request, a request with one image (half the latents) and a two-row text-only
    /// request; steps 6–8 batch only text-only requests. Every batched step equals the request stepped alone.
    /// </summary>
    [Test]
    public void RequestsSteppedTogether_EqualEachSteppedAlone_WithAndWithoutImages()
    {
        using var model = IdeficsStepProbe.CreateTiny(4, 2, CPU, ScalarType.Float32, "vector", true);
        var d = (DecoderBackbone)model;
        BackboneInputs[] prompts = [PairWithABlindRow(), IdeficsStepProbe.Prompt(1, 9, 0, seed: 3), IdeficsStepProbe.Prompt(1, 14, 1, seed: 5), IdeficsStepProbe.Prompt(2, 7, 0, seed: 9)];
        int[] joinAt = [0, 0, 3, 1], leaveAfter = [5, 8, 5, 9];
        const int dropRowAfter = 2;
        try
        {
            int batchedSteps = JoinLeaveDriver.Run(model, prompts, joinAt, leaveAfter, dropRowAfter, steps: 10, capacity: 12, (states, tokens) => d.StaticStepMany(states, tokens));
            Assert.That(batchedSteps, Is.EqualTo(9), "steps 0–8 ran several requests as one batch");
        }
        finally
        {
            foreach (var p in prompts) IdeficsStepProbe.Dispose(p);
        }
    }

    [Test]
    public void Batcher_RunsIdeficsRequestsAsOneForward()
    {
        using var model = IdeficsStepProbe.CreateTiny(2, 1, CPU, ScalarType.Float32);
        using var batcher = new DecodeScheduler(model, 8);
        var pa = IdeficsStepProbe.Prompt(1, 10, 1, seed: 11); var pb = IdeficsStepProbe.Prompt(1, 13, 2, seed: 12);
        var (a, la) = model.Prefill(pa, 4); var (b, lb) = model.Prefill(pb, 4);
        var (ra, _) = model.Prefill(pa, 4); var (rb, _) = model.Prefill(pb, 4);
        using (ra) using (rb)
        {
            using var ta = la.argmax(1); using var tb = lb.argmax(1);
            // each session feeds its token once and picks from that one step's logits
            using var sa = SessionScripts.FeedThenGreedy(a, la, ta.item<long>(), 1, [], new HashSet<long>());
            using var sb = SessionScripts.FeedThenGreedy(b, lb, tb.item<long>(), 1, [], new HashSet<long>());
            batcher.Join(sa); batcher.Join(sb); // members before either runs: their first round waits for both
            var ready = new Barrier(2);
            var t1 = new Thread(() => { ready.SignalAndWait(); batcher.Decode(sa); });
            var t2 = new Thread(() => { ready.SignalAndWait(); batcher.Decode(sb); });
            t1.Start(); t2.Start(); t1.Join(); t2.Join();
            var (ga, gb) = (sa.Logits[0]!, sb.Logits[0]!);
            using var ea = model.Step(ra, ta); using var eb = model.Step(rb, tb);
            Assert.That(RelErr(ga, ea), Is.LessThanOrEqualTo(1e-5));
            Assert.That(RelErr(gb, eb), Is.LessThanOrEqualTo(1e-5));
            Assert.That(batcher.Counts, Is.EqualTo((2L, 1L)), "two IDEFICS steps in one forward");
        }
        IdeficsStepProbe.Dispose(pa); IdeficsStepProbe.Dispose(pb);
    }

    [Test]
    public void StaticStep_TensorsPerLayer()
    {
        var st = IdeficsStepProbe.TensorsPerLayerStep(StepPath.Static, CPU, ScalarType.Float32);
        var eager = IdeficsStepProbe.TensorsPerLayerStep(StepPath.Eager, CPU, ScalarType.Float32);
        TestContext.Out.WriteLine($"idefics tensors per step: plain layer static {st.PerPlainLayer:0.##} / eager {eager.PerPlainLayer:0.##}, " +
            $"gated cross-attention layer static {st.PerGatedLayer:0.##} / eager {eager.PerGatedLayer:0.##}");
        Assert.That(st.PerPlainLayer, Is.LessThanOrEqualTo(12), "a plain layer keeps the shared decoder's budget (reused GEMM buffers, docs/perf.md)");
        Assert.That(st.PerGatedLayer, Is.LessThanOrEqualTo(12), "a gated cross-attention layer (its MLP shares the reused GEMM buffers)");
        Assert.That(st.PerGatedLayer, Is.LessThan(eager.PerGatedLayer));
    }
}
