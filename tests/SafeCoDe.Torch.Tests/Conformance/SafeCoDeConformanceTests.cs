using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Safety;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Conformance;

/// <summary>
/// A tokenizer stand-in for the fixtures (which ship none): every id decodes to a fixed piece — capitalised and
/// lower-case words, quote characters, a '|' piece — and words encode by a stable hash, so every rule of the
/// reference algorithm that reads text (refusal set, phrase ranking, quote skip, early exit, corruption) is exercised.
/// </summary>
public sealed class ToyCodec(long vocab) : ITokenCodec
{
    public string Piece(long id) =>
        id < 3 ? (id == 2 ? "</s>" : id == 1 ? "<s>" : "<pad>")
        : id % 13 == 0 ? "\"" : id % 17 == 0 ? " |x" : id % 2 == 0 ? $" W{id}" : $" w{id}";

    public long[] Encode(string text) =>
        text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(w => 3 + (long)(Fnv(w) % (ulong)(vocab - 4))).ToArray();

    public string Decode(IReadOnlyList<long> ids, bool skipSpecialTokens = false) =>
        string.Concat(ids.Where(i => !(skipSpecialTokens && i < 3)).Select(Piece));

    private static ulong Fnv(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (var ch in s) { h ^= ch; h *= 1099511628211UL; }
        return h;
    }
}

/// <summary>SafeCoDe decoding on every backbone family: batching, presets, and agreement with an independent reference.</summary>
[TestFixtureSource(typeof(BackboneConformanceTests), nameof(BackboneConformanceTests.Families))]
public class SafeCoDeConformanceTests(string family, string[] variants)
{
    private IBackbone _model = null!;
    private BackboneInputs _real = null!, _noised = null!;
    private readonly List<Tensor> _owned = [];
    private ToyCodec _codec = null!;
    private RefusalTokens _refusal = null!;
    private long[] _eos = [];
    private long[] _banned = [];

    [OneTimeSetUp]
    public void Load()
    {
        var dir = ModelDirectory.Open(BackboneConformanceTests.FixtureDir(family, variants[0]));
        _model = Backbones.Load(dir, CPU, ScalarType.Float32);
        (_real, _noised) = BackboneConformanceTests.ReferenceInputs(dir.Dir, _owned);
        _codec = new ToyCodec(_model.VocabSize);
        _refusal = new RefusalTokens(RefusalTokens.ReferencePhrases, _codec, _model.VocabSize);
        _eos = SafeCoDe.Torch.Verification.Verifier.EosIds(dir);
        _banned = Backbones.PlaceholderTokenIds(dir.Config);
    }

    [OneTimeTearDown]
    public void Unload() { _model?.Dispose(); foreach (var t in _owned) t.Dispose(); }

    private DecodeOutcome Engine(DecodingOptions o, Verdict v, bool batched)
    {
        bool noised = DecodingMethods.Of(o).Needs(o).Noised is not null;
        using var b = batched
            ? DecodeSessions.Open(_model, _real, noised ? _noised : null, 64, 0)
            : DecodeSessions.OpenSeparate(_model, _real, _noised, 64);
        return MethodDecoder.Decode(_model, b, v, o, _codec, _refusal, _eos, (int)_real.SeqLen, bannedIds: _banned);
    }

    private static readonly SafeCoDeOptions Greedy = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, MaxNewTokens = 24 };

    [Test]
    public void BatchedBranches_EqualTwoSeparatePasses_TokenForToken(
        [Values(Verdict.Safe, Verdict.Unsafe)] Verdict v, [Values("safecode", "vcd")] string mode)
    {
        var o = DecodingMethods.Rebase(Greedy, mode);
        var a = Engine(o, v, batched: true);
        var b = Engine(o, v, batched: false);
        Assert.That(a.Tokens, Is.EqualTo(b.Tokens));
        Assert.That(a.GuidedTokens, Is.EqualTo(b.GuidedTokens));
        Assert.That(a.Tokens, Is.Not.Empty);
    }

    [Test]
    public void SeededSampling_IsReproducible()
    {
        var o = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Seed = 7, MaxNewTokens = 16 };
        var a = Engine(o, Verdict.Safe, true);
        var b = Engine(o, Verdict.Safe, true);
        var c = Engine(o with { Seed = 8 }, Verdict.Safe, true);
        Assert.That(a.Tokens, Is.EqualTo(b.Tokens));
        Assert.That(c.Tokens, Is.Not.EqualTo(a.Tokens), "another seed samples differently");
    }

    [Test]
    public void UnsafeVerdict_ForcesAPreferredRefusalPhrase()
    {
        var r = Engine(Greedy, Verdict.Unsafe, true);
        Assert.That(r.ForcedPhrase, Is.Not.Null);
        var ids = _codec.Encode(r.ForcedPhrase!).Take(5).ToArray();
        Assert.That(r.Tokens.Take(ids.Length), Is.EqualTo(ids), "the answer starts with the forced phrase's first tokens");
        Assert.That(r.AlphaUsed, Is.EqualTo(0.3), "α is not halved on unsafe");
        Assert.That(r.Budget, Is.EqualTo(24));
        var lower = r.ForcedPhrase!.ToLowerInvariant();
        Assert.That(RefusalTokens.ReferenceKeywords.Any(k => lower.Contains(k)), Is.True, $"'{r.ForcedPhrase}' contains a preferred keyword");
    }

    [Test]
    public void SafeVerdict_HalvesAlphaAndSuppressesRefusals_PaperDoesNeither()
    {
        var f = Engine(Greedy, Verdict.Safe, true);
        Assert.That(f.AlphaUsed, Is.EqualTo(0.15));
        Assert.That(f.ForcedPhrase, Is.Null);
        Assert.That(f.GuidedTokens, Is.InRange(1, 5));
        var p = Engine(SafeCoDeOptions.For(SafeCoDePreset.Paper) with { Greedy = true, MaxNewTokens = 24 }, Verdict.Safe, true);
        Assert.That(p.AlphaUsed, Is.EqualTo(0.3));
        var pu = Engine(SafeCoDeOptions.For(SafeCoDePreset.Paper) with { Greedy = true, MaxNewTokens = 24 }, Verdict.Unsafe, true);
        Assert.That(pu.ForcedPhrase, Is.Null, "paper: soft boost, no forced phrase");
        Assert.That(pu.GuidedTokens, Is.GreaterThan(0));
    }

    [Test]
    public void LiveTensorCount_ReturnsToBaseline_AfterManyGuidedDecodes()
    {
        var sampled = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Seed = 5, MaxNewTokens = 4 };
        Engine(sampled, Verdict.Safe, true); // warm-up (lazily cached tensors)
        long baseline = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 30; i++)
        {
            var v = i % 2 == 0 ? Verdict.Safe : Verdict.Unsafe;
            var mode = i % 3 == 0 ? "vcd" : i % 3 == 1 ? "safecode" : "vanilla";
            Engine(DecodingMethods.Rebase(sampled with { Seed = i, CorruptionRollback = i % 5 == 0 }, mode), v, batched: i % 4 != 3);
        }
        Assert.That(TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount, Is.EqualTo(baseline));
    }

    [Test]
    public void FaithfulPreset_AgreesWithAnIndependentReferenceImplementation([Values(Verdict.Safe, Verdict.Unsafe)] Verdict v)
    {
        var engine = Engine(Greedy, v, batched: true);
        var reference = ReferenceAlgorithm.Run(_model, _real, _noised, v, Greedy, _codec, _eos, _banned);
        TestContext.Out.WriteLine($"{family} {v}: guided {engine.GuidedTokens}, forced '{engine.ForcedPhrase}', rolled back {engine.RolledBack}, tokens {string.Join(" ", engine.Tokens)}");
        Assert.That(engine.Tokens, Is.EqualTo(reference), $"engine guided {engine.GuidedTokens}, forced '{engine.ForcedPhrase}'");
    }
}

/// <summary>
/// The reference code's token choices (docs/method.md) with every sampling step replaced by argmax, written
/// the reference's way: no KV cache, two separate full forward passes per guided step, text rules on decoded strings.
/// </summary>
public static class ReferenceAlgorithm
{
    private static readonly string[] Quotes = ["\"", "'", "\u201C", "\u201D", "\u2018", "\u2019", "`", "\u00B4"];

    private static float[] LastLogits(IBackbone m, BackboneInputs prompt, List<long> generated)
    {
        using var scope = NewDisposeScope();
        var add = tensor(generated.ToArray(), ScalarType.Int64).view(1, -1);
        var ids = cat([prompt.InputIds, add], 1);
        var images = prompt.Images.ToDictionary(kv => kv.Key, kv => BatchCollator.TokenAligned.Contains(kv.Key) && generated.Count > 0
            ? cat([kv.Value, kv.Value.narrow(1, kv.Value.shape[1] - 1, 1).expand(Repeat(kv.Value.shape, generated.Count))], 1)
            : kv.Value);
        var (s, l) = m.Prefill(new BackboneInputs(ids, ones_like(ids), images), 0);
        s.Dispose();
        return l[0].data<float>().ToArray();
    }

    private static long[] Repeat(long[] shape, int n) { var s = shape.ToArray(); s[1] = n; return s; }

    private static float[] Softmax(float[] z)
    {
        using var t = tensor(z);
        using var p = t.softmax(0);
        return p.data<float>().ToArray();
    }

    private static long Argmax(float[] p) { long best = 0; for (int i = 1; i < p.Length; i++) if (p[i] > p[best]) best = i; return best; }

    /// <param name="banned">Placeholder ids the engine never emits (its one addition to the reference): masked out of every choice.</param>
    public static List<long> Run(IBackbone m, BackboneInputs real, BackboneInputs noised, Verdict verdict, SafeCoDeOptions o, ITokenCodec codec, long[] eos, long[] banned)
    {
        float[] Logits(BackboneInputs b, List<long> g)
        {
            var z = LastLogits(m, b, g);
            foreach (var id in banned) z[id] = float.NegativeInfinity;
            return z;
        }
        var gen = new List<long>();
        float alpha = (float)o.Alpha;
        var phrases = RefusalTokens.ReferencePhrases;
        var refusalIds = new HashSet<long>(phrases.SelectMany(codec.Encode));
        if (verdict == Verdict.Unsafe && o.MaxSteps >= 2)
        {
            var zr = Logits(real, gen); var zn = LastLogits(m, noised, gen);
            var p = Softmax(zr.Select((x, i) => x - alpha * zn[i]).ToArray());
            var ranked = new List<(string phrase, double score)>();
            foreach (var ph in phrases)
            {
                var ids = codec.Encode(ph);
                if (ids.Length == 0) continue;
                ranked.Add((ph, ids.Where(id => id < p.Length).Sum(id => (double)p[id])));
            }
            ranked = ranked.OrderByDescending(x => x.score).Take(o.TopK).ToList();
            string[] keywords = ["sorry", "apologize", "unable", "cannot", "can't", "not allowed", "As an AI", "not able to"];
            var preferred = ranked.Where(x => keywords.Any(k => x.phrase.ToLower().Contains(k))).ToList();
            var top = preferred.Count > 0 ? preferred[0].phrase : ranked[0].phrase;
            gen.AddRange(codec.Encode(top).Take(o.MaxSteps));
        }
        else
        {
            float safeAlpha = alpha * 0.5f;
            for (int step = 0; step < o.MaxSteps; step++)
            {
                var zr = Logits(real, gen); var zn = LastLogits(m, noised, gen);
                var p = Softmax(zr.Select((x, i) => x - safeAlpha * zn[i]).ToArray());
                var q = p.Select((x, i) => refusalIds.Contains(i) ? x * (float)(1 - o.LambdaSupp * 0.5) : x).ToArray();
                float sum = q.Sum();
                q = q.Select(x => x / sum).ToArray();
                long next;
                if (step == 0)
                {
                    var order = Enumerable.Range(0, q.Length).OrderByDescending(i => q[i]).Take(o.TopK).ToArray();
                    next = Quotes.Contains(codec.Decode([order[0]]).Trim()) && order.Length > 1 ? order[1] : order[0];
                }
                else next = Argmax(q);
                gen.Add(next);
                var prefix = codec.Decode(gen);
                var words = prefix.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (step >= 1 && words.Length >= 2 && words[0].Length >= 2 && char.IsUpper(words[0][0])) break;
            }
        }
        // corruption check on the (first) decoded guided token, keeping it when it has no '|'
        if (gen.Count > 0)
        {
            var first = codec.Decode([gen[0]], true).Trim();
            if (first.Contains('|') || first.Contains('$') || first.Contains("MS"))
                gen.RemoveRange(first.Contains('|') ? 0 : 1, gen.Count - (first.Contains('|') ? 0 : 1));
        }
        // continuation: greedy on the real image, full recompute, until EOS or the budget
        int budget = o.Budget(m.Family, verdict, (int)real.SeqLen);
        for (int i = 0; i < budget; i++)
        {
            var next = Argmax(Logits(real, gen));
            gen.Add(next);
            if (eos.Contains(next)) break;
        }
        return gen;
    }
}
