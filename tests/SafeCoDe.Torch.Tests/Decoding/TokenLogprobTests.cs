using NUnit.Framework;
using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Scheduling;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Decoding;

/// <summary>
/// Log-probabilities of picks (<see cref="DecodeSession.Logprobs"/>): each equals the log of the distribution the
/// selector picked from, computed here in double from the scripted backbone's known logits; the top tokens are sorted
/// and limited; a forced token is certain; what a holding phase's transition drops never appears; and recording them
/// changes no token.
/// </summary>
public class TokenLogprobTests
{
    private const int Vocab = 12;

    /// <summary>Logits of step n (n tokens fed so far), known to the test: a fixed, step-dependent pattern.</summary>
    private static float[] LogitsAt(int n) => Enumerable.Range(0, Vocab).Select(j => (float)(3 * Math.Sin(1.3 * j + 0.7 * n) + 0.1 * j)).ToArray();

    private sealed class Known : IBackbone
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
        private static Tensor Row(int n) => tensor(LogitsAt(n)).view(1, Vocab);
        public global::SafeCoDe.Torch.Checkpoints.ModelConfig Config => throw new NotSupportedException();
        public string Family => "known";
        public Device Device => CPU;
        public ScalarType DType => ScalarType.Float32;
        public long VocabSize => Vocab;
        public (DecodeState State, Tensor Logits) Prefill(BackboneInputs inputs, int maxNewTokens, bool allLogits = false) => (new State(), Row(0));
        public Tensor Step(DecodeState state, Tensor tokens) { var s = (State)state; s.Fed.Add(tokens.item<long>()); return Row(s.Fed.Count); }
        public void Dispose() { }
    }

    /// <summary>Log-softmax in double (what the test expects the engine's float32 values to be, within float rounding).</summary>
    private static double[] LogSoftmax(double[] z)
    {
        double max = z.Where(double.IsFinite).Max(), sum = z.Where(double.IsFinite).Sum(v => Math.Exp(v - max));
        return z.Select(v => double.IsFinite(v) ? v - max - Math.Log(sum) : double.NegativeInfinity).ToArray();
    }

    private static (DecodeSession Session, Known.State State) Run(DecodePhase first, int? logprobs, torch.Generator? generator = null)
    {
        var model = new Known();
        var (state, logits) = model.Prefill(null!, 16);
        var session = new DecodeSession([state], [logits]) { Logprobs = logprobs, Generator = generator };
        session.Begin(first);
        using var scheduler = new DecodeScheduler(model, 2);
        scheduler.Decode(session);
        return (session, (Known.State)state);
    }

    [Test]
    public void Greedy_EachLogprobIsTheLogSoftmaxOfThatStepsLogits_TopSortedAndLimited()
    {
        var banned = new long[] { 3 };
        using var index = tensor(banned, ScalarType.Int64);
        DecodePhase Greedy() => new() { Name = "greedy", Chain = new RuleChain(new RealRow(), new BanTokens(index, banned)), Selector = new Argmax(), Budget = 6 };
        var (s, _) = Run(Greedy(), logprobs: 4);
        using (s)
        {
            Assert.That(s.TokenLogprobs, Has.Count.EqualTo(s.Tokens.Count).And.Count.EqualTo(6));
            for (int n = 0; n < s.Tokens.Count; n++)
            {
                var z = LogitsAt(n).Select(v => (double)v).ToArray();
                z[3] = double.NegativeInfinity;
                var expected = LogSoftmax(z);
                var l = s.TokenLogprobs[n];
                Assert.That(l.Id, Is.EqualTo(s.Tokens[n]));
                Assert.That(l.Logprob!.Value, Is.EqualTo(expected[s.Tokens[n]]).Within(1e-5), $"step {n}");
                Assert.That(l.Top, Has.Count.EqualTo(4), "top_logprobs count honoured");
                var order = Enumerable.Range(0, Vocab).OrderByDescending(j => expected[j]).Take(4).ToArray();
                Assert.That(l.Top.Select(t => t.Id), Is.EqualTo(order), "the most likely tokens, sorted");
                Assert.That(l.Top.Select(t => t.Logprob), Is.EqualTo(order.Select(j => expected[j])).Within(1e-5));
                Assert.That(l.Top[0].Id, Is.EqualTo(l.Id), "greedy picks the top-1");
                Assert.That(l.Top.Select(t => t.Id), Has.No.Member(3L), "a banned token has no probability");
            }
            var (plain, _) = Run(Greedy(), logprobs: null);
            using (plain)
            {
                Assert.That(plain.Tokens, Is.EqualTo(s.Tokens), "recording log-probabilities changes no pick");
                Assert.That(plain.TokenLogprobs, Is.Empty, "nothing is recorded when none are asked for");
            }
        }
    }

    [Test]
    public void Sampled_TheLogprobIsOfTheFilteredTemperedDistribution_AndOnlyTokensItKeepsAreListed()
    {
        const double t = 0.8;
        const int k = 3;
        DecodePhase Sampled(torch.Generator g) => new()
        {
            Name = "sampled", Chain = new RuleChain(new RealRow(), new Temperature(t), new TopK(k), new TopP(1), new Softmax()),
            Selector = new Multinomial(g), Budget = 6,
        };
        var (s, _) = Run(Sampled(new torch.Generator(5)), logprobs: 5);
        using (s)
        {
            for (int n = 0; n < s.Tokens.Count; n++)
            {
                var z = LogitsAt(n).Select(v => v / t).ToArray();
                var kept = Enumerable.Range(0, Vocab).OrderByDescending(j => z[j]).Take(k).ToHashSet();
                var expected = LogSoftmax(z.Select((v, j) => kept.Contains(j) ? v : double.NegativeInfinity).ToArray());
                var l = s.TokenLogprobs[n];
                Assert.That(kept, Does.Contain(l.Id));
                Assert.That(l.Logprob!.Value, Is.EqualTo(expected[l.Id]).Within(1e-5), $"step {n}");
                Assert.That(l.Top.Select(x => x.Id).ToHashSet(), Is.EquivalentTo(kept), "top-5 asked, but only the 3 tokens top-k keeps have probability");
                Assert.That(l.Top.Select(x => x.Logprob), Is.Ordered.Descending);
            }
            var (plain, _) = Run(Sampled(new torch.Generator(5)), logprobs: null);
            using (plain) Assert.That(plain.Tokens, Is.EqualTo(s.Tokens), "the same seed draws the same tokens with and without log-probabilities");
        }
    }

    [Test]
    public void HoldingPhase_KeptPicksKeepTheirSelectorsDistribution_DroppedOnesVanish_ForcedOnesAreCertain_OthersUnrecorded()
    {
        const double temper = 0.5;
        long? second = null;
        var forced = new DecodePhase { Name = "forced", Selector = new Forced([7, 8]), Budget = 2, Holds = true };
        var held = new DecodePhase
        {
            // probabilities from the chain, then the selector's own tempering before its pick: the logprob is of the tempered one
            Name = "held", Chain = new RuleChain(new RealRow(), new Softmax()), Selector = new After(new TemperedDistribution(temper), new Argmax()),
            Budget = 3, Holds = true,
            Next = (s, end) =>
            {
                second = end.Tokens[1];
                s.Append([end.Tokens[0]]);                       // kept, as a rollback keeps a first token
                s.Append([(end.Tokens[1] + 1) % Vocab]);         // not what the phase picked at that place
                return forced;
            },
        };
        var (s, _) = Run(held, logprobs: 2);
        using (s)
        {
            Assert.That(s.Tokens, Has.Count.EqualTo(4));
            Assert.That(s.TokenLogprobs.Select(l => l.Id), Is.EqualTo(s.Tokens), "one entry per answer token: the two dropped picks are not there");
            var p = LogSoftmax(LogitsAt(0).Select(v => (double)v).ToArray()).Select(Math.Exp);
            var tempered = LogSoftmax(p.Select(v => Math.Log(v + 1e-10) / temper).ToArray());
            Assert.That(s.TokenLogprobs[0].Logprob!.Value, Is.EqualTo(tempered[s.Tokens[0]]).Within(1e-4), "the tempered distribution the pick came from");
            Assert.That(s.TokenLogprobs[1].Logprob, Is.Null, $"token {s.Tokens[1]} was not the phase's pick {second} there: no distribution is claimed for it");
            Assert.That(s.TokenLogprobs[1].Top, Is.Empty);
            Assert.That(s.Tokens.Skip(2), Is.EqualTo(new long[] { 7, 8 }));
            foreach (var l in s.TokenLogprobs.Skip(2))
            {
                Assert.That(l.Logprob, Is.EqualTo(0.0), "a forced token: the method's distribution is all on it");
                Assert.That(l.Top.Select(x => (x.Id, x.Logprob)), Is.EqualTo(new[] { (l.Id, 0.0) }));
            }
        }
    }

    [Test]
    public void SessionsPickedTogether_EachRecordsItsOwn_AndTheOthersAreUnchanged()
    {
        var model = new Known();
        DecodePhase Greedy() => new() { Name = "greedy", Chain = new RuleChain(new RealRow()), Selector = new Argmax(), Budget = 5 };
        var sessions = new[] { (int?)3, null, 1 }.Select(k =>
        {
            var (state, logits) = model.Prefill(null!, 16);
            var session = new DecodeSession([state], [logits]) { Logprobs = k };
            session.Begin(Greedy());
            return session;
        }).ToArray();
        using var scheduler = new DecodeScheduler(model, 8);
        foreach (var s in sessions) scheduler.Join(s);
        var ready = new Barrier(sessions.Length);
        var threads = sessions.Select(s => new Thread(() => { ready.SignalAndWait(); scheduler.Decode(s); })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        var (alone, _) = Run(Greedy(), logprobs: null);
        using (alone)
        {
            Assert.That(sessions.Select(s => s.Tokens), Is.All.EqualTo(alone.Tokens));
            Assert.That(sessions[1].TokenLogprobs, Is.Empty, "the session that asked for none records none");
            Assert.That(sessions[0].TokenLogprobs.Select(l => l.Top.Count), Is.All.EqualTo(3));
            Assert.That(sessions[2].TokenLogprobs.Select(l => l.Top.Count), Is.All.EqualTo(1), "each session gets its own count");
            for (int n = 0; n < alone.Tokens.Count; n++)
            {
                var expected = LogSoftmax(LogitsAt(n).Select(v => (double)v).ToArray());
                Assert.That(sessions[0].TokenLogprobs[n].Logprob!.Value, Is.EqualTo(expected[alone.Tokens[n]]).Within(1e-5));
                Assert.That(sessions[2].TokenLogprobs[n].Logprob, Is.EqualTo(sessions[0].TokenLogprobs[n].Logprob));
            }
        }
        foreach (var s in sessions) s.Dispose();
    }

    [Test]
    public void Rules_SayWhetherTheyOutputLogitsOrProbabilities()
    {
        using var ids = tensor(new long[] { 1 }, ScalarType.Int64);
        using var scale = RefusalScale.Boost(ids, 1.0);
        Assert.That(new RuleChain(new RealRow(), new BanTokens(null, [])).Output, Is.EqualTo(ScoreKind.Logits));
        Assert.That(new RuleChain(new RealRow(), new Temperature(0.7), new TopK(5), new TopP(0.9)).Output, Is.EqualTo(ScoreKind.Logits));
        Assert.That(new RuleChain(new SafeCoDeContrast(1), new Softmax(), scale).Output, Is.EqualTo(ScoreKind.Probabilities));
        Assert.That(new RuleChain(new RealRow(), new Softmax(), new TemperedDistribution(0.7)).Output, Is.EqualTo(ScoreKind.Probabilities));
        Assert.That(new RuleChain(new SafeCoDeContrast(1)).Output, Is.EqualTo(ScoreKind.Logits));
    }
}
