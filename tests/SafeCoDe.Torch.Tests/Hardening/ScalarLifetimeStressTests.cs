using System.Diagnostics;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Tests.Conformance;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Hardening;

/// <summary>
/// Regression guard for the TorchSharp scalar lifetime race (see <c>Runtime/Scalars.cs</c>): forwards of two tiny
/// families (LLaVA: CLIP tower with quick_gelu + RmsNorm decoder; Qwen2-VL: its own vision tower and RoPE) and their
/// static decode steps run on several threads while another thread forces full collections and finalizers in a tight
/// loop. A Scalar finalized while libtorch reads it kills the test host or changes a logit; every forward must
/// return exactly the logits of a quiet reference run.
/// </summary>
[NonParallelizable]
public class ScalarLifetimeStressTests
{
    private const int Workers = 3;
    // 6 s in CI; SAFECODE_SCALAR_STRESS_SECONDS runs it longer by hand
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(
        double.TryParse(Environment.GetEnvironmentVariable("SAFECODE_SCALAR_STRESS_SECONDS"), out var s) && s > 0 ? s : 6);

    private sealed class Subject : IDisposable
    {
        public required IBackbone Model;
        public required BackboneInputs Batch;
        public required List<Tensor> Owned;
        public void Dispose() { Model.Dispose(); foreach (var t in Owned) t.Dispose(); }
    }

    private static Subject Open(string family)
    {
        var dir = ModelDirectory.Open(BackboneConformanceTests.FixtureDir(family, "hub"));
        var owned = new List<Tensor>();
        var (real, noised) = BackboneConformanceTests.ReferenceInputs(dir.Dir, owned);
        var batch = BatchCollator.Collate([real, noised], dir.Config.Text.PadTokenId ?? 0);
        owned.Add(batch.InputIds);
        if (batch.AttentionMask is { } m) owned.Add(m);
        owned.AddRange(batch.Images.Values);
        return new Subject { Model = Backbones.Load(dir, CPU, ScalarType.Float32), Batch = batch, Owned = owned };
    }

    /// <summary>Prefill logits, then two static steps fed the greedy tokens: three logit tensors, detached.</summary>
    private static Tensor[] Run(Subject s)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var d = (DecoderBackbone)s.Model;
        var (state, logits) = s.Model.Prefill(s.Batch, 4);
        using (state)
        {
            var l1 = d.StaticStep(state, logits.argmax(1), bucket: 1);
            var l2 = d.StaticStep(state, l1.argmax(1), bucket: 1);
            return [logits.DetachFromDisposeScope(), l1.DetachFromDisposeScope(), l2.DetachFromDisposeScope()];
        }
    }

    private static bool Same(Tensor[] a, Tensor[] b) =>
        a.Length == b.Length && a.Zip(b).All(p => StaticStepConformanceTests.Same(p.First, p.Second));

    [Test]
    public void ForwardsUnderConstantCollection_ReturnTheReferenceLogits()
    {
        string[] families = [ModelFamilies.Llava, ModelFamilies.Qwen2VL];
        var subjects = new Subject[Workers];
        var reference = new Tensor[Workers][];
        try
        {
            for (int w = 0; w < Workers; w++)
            {
                subjects[w] = Open(families[w % families.Length]);
                reference[w] = Run(subjects[w]);
            }
            int forwards = 0, mismatches = 0, collections = 0;
            Exception? failure = null;
            using var stop = new CancellationTokenSource(Duration);
            var collector = new Thread(() =>
            {
                while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); collections++; }
            });
            var workers = Enumerable.Range(0, Workers).Select(w => new Thread(() =>
            {
                try
                {
                    while (!stop.IsCancellationRequested)
                    {
                        var got = Run(subjects[w]);
                        if (!Same(got, reference[w])) Interlocked.Increment(ref mismatches);
                        foreach (var t in got) t.Dispose();
                        Interlocked.Increment(ref forwards);
                    }
                }
                catch (Exception e) { failure ??= e; stop.Cancel(); }
            })).ToList();
            var clock = Stopwatch.StartNew();
            collector.Start();
            workers.ForEach(t => t.Start());
            workers.ForEach(t => t.Join());
            collector.Join();
            TestContext.Out.WriteLine($"{forwards} forwards (prefill + 2 static steps) on {Workers} threads, {collections} forced collections, {clock.Elapsed.TotalSeconds:0.0} s");
            Assert.That(failure, Is.Null, () => $"a forward threw: {failure}");
            Assert.That(forwards, Is.GreaterThanOrEqualTo(Workers), "every worker finished at least one forward");
            Assert.That(collections, Is.GreaterThan(0), "the collector ran");
            Assert.That(mismatches, Is.Zero, "forwards whose logits differ from the quiet reference run");
        }
        finally
        {
            foreach (var r in reference) if (r is not null) foreach (var t in r) t.Dispose();
            foreach (var s in subjects) s?.Dispose();
        }
    }
}
