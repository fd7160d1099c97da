using NUnit.Framework;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Scheduling;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Decoding;

/// <summary>Each rule of the decoding chain on hand-made scores, and a session's phase on a scripted backbone.</summary>
public class LogitsProcessorTests
{
    private static float[] F(Tensor t) => t.to(ScalarType.Float32).cpu().data<float>().ToArray();
    private static Tensor Rows(params float[][] rows) => tensor(rows.SelectMany(r => r).ToArray()).view(rows.Length, rows[0].Length);
    private static Tensor Ids(params long[] ids) => tensor(ids, ScalarType.Int64);

    private sealed class Codec(Dictionary<long, string> pieces) : ITokenCodec
    {
        public long[] Encode(string text) => [];
        public string Decode(IReadOnlyList<long> ids, bool skipSpecialTokens = false) => string.Concat(ids.Select(i => pieces.GetValueOrDefault(i, "?")));
    }

    [Test]
    public void SafeCoDeContrast_RealMinusAlphaNoised_OneRowOut()
    {
        using var l = Rows([2f, 1f, -1f], [1f, 3f, -1f]);
        using var c = new SafeCoDeContrast(0.5).Process(l);
        Assert.That(c.shape, Is.EqualTo(new long[] { 1, 3 }), "one session's pair in, its one row out");
        Assert.That(F(c), Is.EqualTo(new[] { 1.5f, -0.5f, -0.5f }).Within(1e-6f));
        Assert.That(F(l), Is.EqualTo(new[] { 2f, 1f, -1f, 1f, 3f, -1f }), "the input is left untouched");
    }

    [Test]
    public void VcdContrast_ContrastsTwoRows_PassesTheRealRowAlone()
    {
        // cut-off: max z_r + ln β = 3 − 2.303 = 0.697, so the 0.5 of token 1 falls below it
        using var two = Rows([3f, 0.5f, 2.9f], [1f, 0f, 4f]);
        using var c = new VcdContrast(1.0, 0.1).Process(two);
        var v = F(c);
        Assert.That(c.shape, Is.EqualTo(new long[] { 1, 3 }));
        Assert.That(v[0], Is.EqualTo(5f).Within(1e-6f));
        Assert.That(v[1], Is.EqualTo(float.NegativeInfinity), "below the β cut-off");
        Assert.That(v[2], Is.EqualTo(1.8f).Within(1e-5f));
        using var one = Rows([3f, 1f, 2f]);
        using var r = new VcdContrast(1.0, 0.1).Process(one);
        Assert.That(F(r), Is.EqualTo(new[] { 3f, 1f, 2f }));
    }

    [Test]
    public void RealRow_TakesRowZero()
    {
        using var l = Rows([1f, 2f], [3f, 4f]);
        using var r = new RealRow().Process(l);
        Assert.That(F(r), Is.EqualTo(new[] { 1f, 2f }));
    }

    [Test]
    public void BanTokens_SetsPlaceholdersToMinusInfinity_NoIndexChangesNothing()
    {
        using var l = Rows([1f, 2f, 3f]);
        using var idx = Ids(1);
        using var banned = new BanTokens(idx).Process(l);
        Assert.That(F(banned), Is.EqualTo(new[] { 1f, float.NegativeInfinity, 3f }));
        using var none = new BanTokens(null).Process(l);
        Assert.That(F(none), Is.EqualTo(new[] { 1f, 2f, 3f }));
    }

    [Test]
    public void Softmax_SumsToOne()
    {
        using var l = tensor(new float[] { 0f, (float)Math.Log(3) });
        using var p = new Softmax().Process(l);
        Assert.That(F(p), Is.EqualTo(new[] { 0.25f, 0.75f }).Within(1e-6f));
    }

    [Test]
    public void RefusalScale_SuppressesOrBoosts_AndRenormalises()
    {
        using var p = tensor(new float[] { 0.5f, 0.25f, 0.25f });
        using var ids = Ids(0);
        var supp = RefusalScale.Suppress(ids, 1.0);
        Assert.That(supp.Factor, Is.EqualTo(0.5));
        using var s = supp.Process(p);
        Assert.That(F(s), Is.EqualTo(new[] { 0.25f / 0.75f, 0.25f / 0.75f, 0.25f / 0.75f }).Within(1e-6f));
        Assert.That(RefusalScale.Suppress(ids, 4.0).Factor, Is.EqualTo(0), "never negative");
        using var b = RefusalScale.Boost(ids, 1.0).Process(p);
        Assert.That(F(b), Is.EqualTo(new[] { 1f / 1.5f, 0.25f / 1.5f, 0.25f / 1.5f }).Within(1e-6f));
    }

    [Test]
    public void TemperatureTopKTopP_FilterLogits()
    {
        using var l = Rows([4f, 2f, 0f, -2f]);
        using var t = new Temperature(2).Process(l);
        Assert.That(F(t), Is.EqualTo(new[] { 2f, 1f, 0f, -1f }));
        using var k = new TopK(2).Process(l);
        Assert.That(F(k), Is.EqualTo(new[] { 4f, 2f, float.NegativeInfinity, float.NegativeInfinity }));
        using var kOff = new TopK(0).Process(l);
        Assert.That(F(kOff), Is.EqualTo(F(l)));
        // probabilities ≈ 0.867, 0.117, 0.016, 0.002: top-p 0.8 keeps the first token alone, 0.9 the first two
        using var p8 = new TopP(0.8).Process(l);
        Assert.That(F(p8).Count(float.IsFinite), Is.EqualTo(1));
        using var p9 = new TopP(0.9).Process(l);
        Assert.That(F(p9).Count(float.IsFinite), Is.EqualTo(2));
    }

    [Test]
    public void TemperedDistribution_SharpensBelowOne()
    {
        using var p = tensor(new float[] { 0.6f, 0.4f });
        using var q = new TemperedDistribution(0.5).Process(p);
        Assert.That(F(q)[0], Is.EqualTo(0.36f / 0.52f).Within(1e-5f));
    }

    [Test]
    public void Chain_AppliesInOrder()
    {
        using var l = Rows([2f, 1f, 0f], [0f, 0f, 0f]);
        using var idx = Ids(0);
        var chain = new RuleChain(new SafeCoDeContrast(1.0), new BanTokens(idx)).Then(new Softmax());
        Assert.That(chain.Rules, Has.Count.EqualTo(3));
        using var p = chain.Process(l);
        var v = F(p);
        Assert.That(v[0], Is.EqualTo(0f));
        Assert.That(v[1], Is.EqualTo((float)(Math.E / (Math.E + 1))).Within(1e-6f));
    }

    [Test]
    public void Selectors_ArgmaxTopTwoQuoteSkipForcedAndSeededDraws()
    {
        using var l = Rows([0.1f, 0.7f, 0.2f]);
        Assert.That(new Argmax().Select(l, 0), Is.EqualTo(1));
        var codec = new Codec(new() { [0] = "a", [1] = " \"", [2] = "b" });
        using var p = tensor(new float[] { 0.1f, 0.7f, 0.2f });
        Assert.That(new TopTwo(codec, quoteSkip: true).Select(p, 0), Is.EqualTo(2), "a quote first gives way to the runner-up on step 0");
        Assert.That(new TopTwo(codec, quoteSkip: true).Select(p, 1), Is.EqualTo(1), "only on step 0");
        Assert.That(new TopTwo(codec, quoteSkip: false).Select(p, 0), Is.EqualTo(1));
        Assert.That(TopTwo.IsQuote(" \u201C "), Is.True);
        Assert.That(new Forced([7, 8]).Select(p, 1), Is.EqualTo(8));
        Assert.That(new FirstThen(new Forced([5]), new Argmax()).Select(l, 0), Is.EqualTo(5));
        Assert.That(new FirstThen(new Forced([5]), new Argmax()).Select(l, 1), Is.EqualTo(1));
        long Draws(ulong seed)
        {
            using var g = new torch.Generator(seed);
            var s = new Multinomial(g);
            return Enumerable.Range(0, 8).Aggregate(0L, (acc, _) => acc * 3 + s.Select(p, 0));
        }
        Assert.That(Draws(11), Is.EqualTo(Draws(11)), "a seed reproduces the draws");
        using var sharp = new TemperedDistribution(0.05).Process(p);
        Assert.That(new After(new Temperature(1), new Argmax()).Select(sharp, 0), Is.EqualTo(1));
    }

    /// <summary>A backbone whose logits make token <c>fed + 1</c> the best after each fed token; its state records what was fed.</summary>
    private sealed class Scripted(int vocab) : IBackbone
    {
        public sealed class State : DecodeState
        {
            public readonly List<long> Fed = [];
            public override long BatchSize => 1;
            public override long Length => Fed.Count;
            public override long Capacity => 1000;
            public override void KeepRows(IReadOnlyList<long> keep) { }
            public override void Truncate(long length) => throw new NotSupportedException();
            public override void Dispose() { }
        }
        public static Tensor Make(int best, int vocab)
        {
            var v = new float[vocab];
            v[best % vocab] = 5f;
            return tensor(v).view(1, vocab);
        }
        public global::SafeCoDe.Torch.Checkpoints.ModelConfig Config => throw new NotSupportedException();
        public string Family => "scripted";
        public Device Device => CPU;
        public ScalarType DType => ScalarType.Float32;
        public long VocabSize => vocab;
        public (DecodeState State, Tensor Logits) Prefill(BackboneInputs inputs, int maxNewTokens, bool allLogits = false) => (new State(), Make(0, vocab));
        public Tensor Step(DecodeState state, Tensor tokens) { var s = (State)state; s.Fed.Add(tokens.item<long>()); return Make(s.Fed.Count, vocab); }
        public void Dispose() { }
    }

    /// <summary>One greedy phase of a session on the scripted backbone, run by a scheduler of its own.</summary>
    private static (List<long> Tokens, bool Eos, List<long> Fed) RunPhase(int budget, IReadOnlySet<long> eos, Func<IReadOnlyList<long>, int, bool>? stop = null,
        List<long>? emitted = null, CancellationToken cancel = default)
    {
        var model = new Scripted(10);
        var (state, logits) = model.Prefill(null!, budget);
        using var session = new DecodeSession([state], [logits]) { Emit = emitted is null ? null : emitted.Add, Cancel = cancel };
        session.Begin(new DecodePhase { Name = "greedy", Chain = new RuleChain(new RealRow()), Selector = new Argmax(), Budget = budget, Eos = eos, StopAfter = stop });
        using var scheduler = new DecodeScheduler(model, 2);
        scheduler.Decode(session);
        return ([.. session.Tokens], session.StoppedAtEos, ((Scripted.State)state).Fed);
    }

    [Test]
    public void APhase_FeedsAllButTheLastToken_StopsAtEosOrTheRule()
    {
        var emitted = new List<long>();
        var r = RunPhase(4, new HashSet<long>(), emitted: emitted);
        Assert.That(r.Tokens, Is.EqualTo(new long[] { 0, 1, 2, 3 }));
        Assert.That(emitted, Is.EqualTo(r.Tokens));
        Assert.That(r.Fed, Is.EqualTo(new long[] { 0, 1, 2 }), "the last token is left to the caller");
        Assert.That(r.Eos, Is.False);

        r = RunPhase(9, new HashSet<long> { 2 });
        Assert.That(r.Tokens, Is.EqualTo(new long[] { 0, 1, 2 }));
        Assert.That(r.Eos, Is.True);
        Assert.That(r.Fed, Is.EqualTo(new long[] { 0, 1 }));

        r = RunPhase(9, new HashSet<long>(), stop: (tokens, step) => tokens.Sum() >= 3);
        Assert.That(r.Tokens, Is.EqualTo(new long[] { 0, 1, 2 }), "the early-exit rule ends the phase after the token that satisfies it");
        Assert.That(r.Fed, Is.EqualTo(new long[] { 0, 1 }));

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => RunPhase(3, new HashSet<long>(), cancel: cts.Token));
    }
}
