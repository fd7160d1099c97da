using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using SafeCoDe.Torch.Decoding.Scheduling;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Tests.Conformance;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Decoding;

/// <summary>
/// Sessions of every method decoding together through one scheduler (<see cref="DecodeScheduler"/>): guided requests (greedy, with
/// the early exit, sampled, the unsafe boost with another α), vanilla and VCD requests decoding together, joining
/// while others decode and leaving at different times, each give the tokens and final logits they give alone
/// (the session run by a scheduler of its own) — for every family of the conformance suite.
/// </summary>
[TestFixtureSource(typeof(BackboneConformanceTests), nameof(BackboneConformanceTests.Families))]
public class GuidedBatchingTests(string family, string[] variants)
{
    private static readonly SafeCoDeOptions Faithful = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, Seed = 11 };

    /// <summary>The jobs: options, verdict, and whether the prompt pair is swapped (a second, different prompt).</summary>
    private static readonly (DecodingOptions O, Verdict V, bool Swap)[] Jobs =
    [
        (Faithful with { MaxNewTokens = 12, EarlyExit = false }, Verdict.Safe, false),
        (Faithful with { MaxNewTokens = 9 }, Verdict.Safe, true),
        (Faithful with { Greedy = false, MaxNewTokens = 10, EarlyExit = false, Seed = 3 }, Verdict.Safe, false),
        (SafeCoDeOptions.For(SafeCoDePreset.Paper) with { Greedy = true, MaxNewTokens = 11, EarlyExit = false }, Verdict.Unsafe, true),
        (DecodingMethods.Rebase(Faithful with { MaxNewTokens = 7 }, "vanilla"), Verdict.Safe, false),
        (DecodingMethods.Rebase(Faithful with { MaxNewTokens = 6 }, "vcd"), Verdict.Safe, true),
        (Faithful with { MaxNewTokens = 14, EarlyExit = false, MaxSteps = 3 }, Verdict.Safe, true),
    ];

    [Test]
    public void GuidedVanillaAndSampledRequests_DecodingTogether_EqualEachAlone()
    {
        var owned = new List<Tensor>();
        var dir = ModelDirectory.Open(BackboneConformanceTests.FixtureDir(family, variants[0]));
        using var model = Backbones.Load(dir, CPU, ScalarType.Float32);
        var (real, noised) = BackboneConformanceTests.ReferenceInputs(dir.Dir, owned);
        var codec = new ToyCodec(model.VocabSize);
        var refusal = new RefusalTokens(RefusalTokens.ReferencePhrases, codec, model.VocabSize);
        var eos = SafeCoDe.Torch.Verification.Verifier.EosIds(dir);
        var banned = Backbones.PlaceholderTokenIds(dir.Config);
        using var batcher = new DecodeScheduler(model, 16);
        try
        {
            (DecodeOutcome Result, Tensor Logits) Decode(int i, DecodeScheduler? b)
            {
                var (o, v, swap) = Jobs[i];
                var (r, n) = swap ? (noised, real) : (real, noised);
                using var branches = DecodeSessions.Open(model, r, DecodingMethods.Of(o).Needs(o).Noised is null ? null : n, 64, 0);
                var result = b is null ? MethodDecoder.Decode(model, branches, v, o, codec, refusal, eos, (int)r.SeqLen, bannedIds: banned)
                    : MethodDecoder.Decode(b, model, branches, v, o, codec, refusal, eos, (int)r.SeqLen, null, default, banned);
                return (result, branches.Logits[0]!.clone().DetachFromDisposeScope());
            }
            var alone = Enumerable.Range(0, Jobs.Length).Select(i => Decode(i, null)).ToArray();
            var together = new (DecodeOutcome Result, Tensor Logits)[Jobs.Length];
            var errors = new Exception?[Jobs.Length];
            // the first four start at once; the others join once the batcher has run rounds (while the first decode)
            var threads = Enumerable.Range(0, Jobs.Length).Select(i => new Thread(() =>
            {
                try
                {
                    if (i >= 4) SpinWait.SpinUntil(() => batcher.Profile.Rounds >= 2 * (i - 3), TimeSpan.FromSeconds(20));
                    together[i] = Decode(i, batcher);
                }
                catch (Exception ex) { errors[i] = ex; }
            })).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            for (int i = 0; i < Jobs.Length; i++)
            {
                Assert.That(errors[i], Is.Null, $"job {i}");
                Assert.That(together[i].Result.Tokens, Is.EqualTo(alone[i].Result.Tokens), $"job {i}: tokens");
                Assert.That(together[i].Result.GuidedTokens, Is.EqualTo(alone[i].Result.GuidedTokens), $"job {i}: guided tokens");
                Assert.That(together[i].Result.StoppedAtEos, Is.EqualTo(alone[i].Result.StoppedAtEos), $"job {i}: EOS");
                Assert.That(together[i].Logits.shape, Is.EqualTo(alone[i].Logits.shape), $"job {i}: final logits shape");
                Assert.That(RelErr(together[i].Logits, alone[i].Logits), Is.LessThanOrEqualTo(1e-5), $"job {i}: final logits");
            }
            var p = batcher.Profile;
            Assert.That(p.GuidedPicked, Is.GreaterThan(0), "the guided phases were picked by the batcher");
            Assert.That(p.Forwards, Is.LessThan(p.Steps), "the requests shared forwards");
            Assert.That(alone.Count(a => a.Result.GuidedTokens > 0), Is.GreaterThanOrEqualTo(3), "guided requests were exercised");
            foreach (var t in alone.Concat(together)) t.Logits.Dispose();
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }
}
