using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Scheduling;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Tests.Conformance;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Decoding;

/// <summary>
/// Several decode states stepped as rows of one batch (<see cref="DecoderBackbone.StaticStepMany"/>) equal each
/// state stepped alone, while states join, drop a row and leave — for every family of the conformance suite.
/// </summary>
[TestFixtureSource(typeof(BackboneConformanceTests), nameof(BackboneConformanceTests.Families))]
public class BatchedStatesTests(string family, string[] variants)
{
    [Test]
    public void StatesSteppedTogether_EqualEachSteppedAlone_WhateverJoinsOrLeaves()
    {
        var owned = new List<Tensor>();
        var dir = ModelDirectory.Open(BackboneConformanceTests.FixtureDir(family, variants[0]));
        using var model = Backbones.Load(dir, CPU, ScalarType.Float32);
        var (real, noised) = BackboneConformanceTests.ReferenceInputs(dir.Dir, owned);
        using var scope = NewDisposeScope();
        var pair = BatchCollator.Collate([real, noised], dir.Config.Text.PadTokenId ?? 0);
        BackboneInputs[] prompts = [pair, real, noised];
        int[] joinAt = [0, 0, 2], leaveAfter = [6, 4, 6];
        const int dropNoisedAfter = 3; // the pair drops its noised row (end of guidance)
        try
        {
            JoinLeaveDriver.Run(model, prompts, joinAt, leaveAfter, dropNoisedAfter, steps: 7, capacity: 10,
                (states, tokens) => StepTogether(model, states, tokens));
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }

    [TestCase(ScalarType.Float32)]
    [TestCase(ScalarType.BFloat16)]
    public void LogitsWrittenIntoAReusedBuffer_EqualTheAllocatingStep(ScalarType dtype)
    {
        var dir = ModelDirectory.Open(BackboneConformanceTests.FixtureDir(family, variants[0]));
        using var model = Backbones.Load(dir, CPU, dtype);
        if (model is not DecoderBackbone { StepsStatically: true } d)
        {
            Assert.That(StepProbe.StepsStatically(model), Is.False, "families without a static step have no batched static step");
            return;
        }
        var owned = new List<Tensor>();
        var (real, noised) = BackboneConformanceTests.ReferenceInputs(dir.Dir, owned);
        using var scope = NewDisposeScope();
        var pair = BatchCollator.Collate([real, noised], dir.Config.Text.PadTokenId ?? 0);
        BackboneInputs[] prompts = [pair, real];
        var (plain, viaBuffer) = (new List<DecodeState>(), new List<DecodeState>());
        var tokens = new List<Tensor>();
        try
        {
            foreach (var p in prompts)
            {
                var (s1, l) = d.Prefill(p, 6);
                var (s2, _) = d.Prefill(p, 6);
                plain.Add(s1); viaBuffer.Add(s2); tokens.Add(l.argmax(1));
            }
            using var buffer = empty([3, model.VocabSize], ScalarType.Float32);
            for (int step = 0; step < 4; step++)
            {
                var expected = d.StaticStepMany(plain, tokens);
                var got = d.StaticStepMany(viaBuffer, tokens, logitsOut: buffer);
                for (int i = 0; i < prompts.Length; i++)
                    Assert.That(got[i].equal(expected[i]).all().item<bool>(), Is.True, $"{dtype} step {step}, state {i}: bitwise equal");
                tokens = expected.Select(e => e.argmax(1)).ToList();
                buffer.zero_();
                Assert.That(got.All(g => g.abs().sum().item<float>() == 0), Is.True, "the logits are views of the buffer");
            }
            Assert.That(() => d.StaticStepMany(viaBuffer, tokens, logitsOut: empty([2, model.VocabSize])), Throws.ArgumentException, "a buffer of the wrong shape");
        }
        finally
        {
            foreach (var s in plain.Concat(viaBuffer)) s.Dispose();
            foreach (var t in owned) t.Dispose();
        }
    }

    /// <summary>What the batcher does with a round: one forward for static-step families, one step each otherwise.</summary>
    private static Tensor[] StepTogether(IBackbone model, List<DecodeState> states, List<Tensor> tokens) =>
        StepProbe.StepsStatically(model)
            ? ((DecoderBackbone)model).StaticStepMany(states, tokens)
            : states.Select((s, i) => model.Step(s, tokens[i])).ToArray();
}

/// <summary>The engine's continuous batching: concurrent requests give the results they give alone, and one cancelled request leaves the others alone.</summary>
public class EngineBatchingTests
{
    private SafeCoDeEngine _engine = null!;
    private static readonly RgbImage Image = RgbImage.Filled(80, 60, 30, 160, 90);
    private static readonly string[] Prompts = ["What is in this picture?", "Describe the colours.", "Is this safe to touch?", "Write a short poem about it."];

    [OneTimeSetUp]
    public void Load() => _engine = SafeCoDeEngine.Load(Path.Combine(TestPaths.Root, "weights", "llava-next-tiny"),
        new EngineOptions { Device = DeviceRequest.Cpu, MaxBatchRows = 8 });

    [OneTimeTearDown]
    public void Unload() => _engine?.Dispose();

    private static SafeCoDeRequest Request(int i, int maxNew) => new()
    {
        Prompt = Prompts[i], Image = Image, Verdict = i % 2 == 0 ? Verdict.Safe : Verdict.Unsafe,
        Options = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, MaxNewTokens = maxNew + 2 * i, EarlyExit = false, Seed = 5 },
    };

    [Test]
    public async Task ConcurrentRequests_EqualTheSameRequestsOneAtATime()
    {
        var alone = new List<SafeCoDeResult>();
        for (int i = 0; i < Prompts.Length; i++) alone.Add(await _engine.GenerateAsync(Request(i, 24)));
        var (steps0, forwards0) = _engine.Batcher!.Counts;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var together = await Task.WhenAll(Enumerable.Range(0, Prompts.Length).Select(i => _engine.GenerateAsync(Request(i, 24))));
        var (steps1, forwards1) = _engine.Batcher.Counts;
        for (int i = 0; i < Prompts.Length; i++)
            Assert.That(together[i].TokenIds, Is.EqualTo(alone[i].TokenIds), $"request {i}");
        TestContext.Out.WriteLine($"concurrent: {steps1 - steps0} steps in {forwards1 - forwards0} forwards, {sw.ElapsedMilliseconds} ms");
        Assert.That(forwards1 - forwards0, Is.LessThan(steps1 - steps0), "concurrent requests must share forwards");
    }

    [Test]
    public async Task GreedyContinuations_ArePickedInSharedRounds_AndEqualEachRequestAlone()
    {
        // vanilla and SafeCoDe requests, different budgets: the batcher picks every continuation's token in one round
        SafeCoDeRequest Mixed(int i) => Request(i, 20) with
        {
            Options = i == 3 ? DecodingMethods.Rebase(Request(i, 20).Options, "vanilla") : Request(i, 20).Options,
        };
        var alone = new List<SafeCoDeResult>();
        for (int i = 0; i < Prompts.Length; i++) alone.Add(await _engine.GenerateAsync(Mixed(i)));
        var p0 = _engine.DecodeBatchProfile;
        var streamed = new string[Prompts.Length];
        var together = await Task.WhenAll(Enumerable.Range(0, Prompts.Length).Select(i =>
            _engine.GenerateAsync(Mixed(i) with { OnText = t => streamed[i] += t })));
        var p = _engine.DecodeBatchProfile.Since(p0);
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.That(together[i].TokenIds, Is.EqualTo(alone[i].TokenIds), $"request {i}");
            Assert.That(streamed[i]?.Trim(), Is.EqualTo(together[i].Answer), $"streamed text of request {i}");
        }
        long continuationTokens = together.Sum(r => r.TokenIds.Length - r.GuidedTokens) - together.Length; // first pick of each is the request's own
        Assert.That(p.Picked, Is.GreaterThan(0).And.LessThanOrEqualTo(continuationTokens), "the batcher picked the continuation tokens");
        Assert.That(p.Rounds, Is.LessThan(p.Steps), "continuations share rounds");
    }

    [Test]
    public async Task CancellingOneRequest_DoesNotDisturbTheOthers()
    {
        var alone = new List<SafeCoDeResult>();
        for (int i = 0; i < 3; i++) alone.Add(await _engine.GenerateAsync(Request(i, 12)));
        using var cancel = new CancellationTokenSource();
        var victim = Request(1, 40) with { OnText = _ => cancel.Cancel() };
        var tasks = new[] { _engine.GenerateAsync(Request(0, 12)), _engine.GenerateAsync(victim, cancel.Token), _engine.GenerateAsync(Request(2, 12)) };
        Assert.That(async () => await tasks[1], Throws.InstanceOf<OperationCanceledException>());
        Assert.That((await tasks[0]).TokenIds, Is.EqualTo(alone[0].TokenIds));
        Assert.That((await tasks[2]).TokenIds, Is.EqualTo(alone[2].TokenIds));
    }
}

/// <summary>The scheduler on its own: greedy sessions equal a loop alone; a session whose cache is full fails alone, the others still run batched.</summary>
public class DecodeSchedulerTests
{
    /// <summary>A greedy loop over one state: feed, step, ban, argmax (what a session's RealRow → BanTokens → Argmax phase does).</summary>
    private static List<long> GreedyAlone(IBackbone model, DecodeState state, long fed, int budget, long[] banned, ISet<long> eos)
    {
        var picks = new List<long>();
        using var ban = tensor(banned);
        using var tok = tensor(new[] { fed });
        for (int i = 0; i < budget; i++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Step(state, tok);
            long t = logits.index_fill(1, ban, double.NegativeInfinity).argmax(-1).item<long>();
            picks.Add(t);
            if (eos.Contains(t)) break;
            tok.fill_(t);
        }
        return picks;
    }

    [Test]
    public void GreedyContinuations_EqualAGreedyLoopAlone_WithTheirOwnBansBudgetsAndEos()
    {
        using var model = StepProbe.CreateTiny(2, CPU, ScalarType.Float32);
        using var batcher = new DecodeScheduler(model, 8);
        using var p1 = StepProbe.TinyPrompt(1, 12, seed: 3).InputIds;
        using var p2 = StepProbe.TinyPrompt(1, 17, seed: 4).InputIds;
        BackboneInputs In(Tensor ids) => new(ids, null, new Dictionary<string, Tensor>());
        // request b's EOS is a token its free-running greedy decode reaches, so it stops early
        var (probe, lp) = model.Prefill(In(p2), 12);
        long fedB = lp.argmax(1).item<long>();
        var probeTokens = GreedyAlone(model, probe, fedB, 10, [5, 6], new HashSet<long>());
        probe.Dispose();
        var eosB = new HashSet<long> { probeTokens[4] };
        int expectedLenB = probeTokens.IndexOf(probeTokens[4]) + 1;
        var jobs = new[]
        {
            (Prompt: p1, Budget: 9, Banned: new long[] { 1, 2, 3 }, Eos: (ISet<long>)new HashSet<long>()),
            (Prompt: p2, Budget: 10, Banned: new long[] { 5, 6 }, Eos: (ISet<long>)eosB),
        };
        var expected = new List<long>[2];
        var got = new List<long>[2];
        var stopped = new bool[2];
        var emitted = new List<long>[] { [], [] };
        using var ready = new Barrier(2);
        var threads = jobs.Select((j, i) => new Thread(() =>
        {
            var (alone, la) = model.Prefill(In(j.Prompt), 12);
            var (mine, lm) = model.Prefill(In(j.Prompt), 12);
            long fed = la.argmax(1).item<long>();
            lock (jobs) expected[i] = GreedyAlone(model, alone, fed, j.Budget, j.Banned, j.Eos);
            using var session = SessionScripts.FeedThenGreedy(mine, lm, fed, j.Budget, j.Banned, (IReadOnlySet<long>)j.Eos, t => emitted[i].Add(t));
            batcher.Join(session);
            ready.SignalAndWait();
            batcher.Decode(session);
            (got[i], stopped[i]) = ([.. session.Tokens], session.StoppedAtEos);
            alone.Dispose();
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        for (int i = 0; i < 2; i++)
        {
            Assert.That(got[i], Is.EqualTo(expected[i]), $"continuation {i}");
            Assert.That(emitted[i], Is.EqualTo(got[i]), $"emitted tokens of continuation {i}");
        }
        Assert.That(got[0], Has.Count.EqualTo(9), "the budget");
        Assert.That(stopped, Is.EqualTo(new[] { false, true }));
        Assert.That(got[1], Has.Count.EqualTo(expectedLenB), "stops at its own EOS");
        var prof = batcher.Profile;
        Assert.That(prof.Picked, Is.EqualTo(got[0].Count + got[1].Count));
        Assert.That(prof.Forwards, Is.LessThan(prof.Steps), "the two continuations stepped as one forward");
    }

    [Test]
    public void GuidedRowsOfSeveralRequests_RunOneRuleChainPerRound()
    {
        // four guided sessions of one kind (safe verdict, greedy, no early exit), members before the first round: each
        // round's guided rows go through the contrast → ban → softmax → scale chain once, stacked, not once per session
        using var model = StepProbe.CreateTiny(2, CPU, ScalarType.Float32);
        using var scheduler = new DecodeScheduler(model, 16);
        var codec = new ToyCodec(model.VocabSize);
        var refusal = new RefusalTokens(RefusalTokens.ReferencePhrases, codec, model.VocabSize);
        var o = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, EarlyExit = false, CorruptionRollback = false, MaxNewTokens = 6, Seed = 4 };
        var prompts = Enumerable.Range(0, 5).Select(i => StepProbe.TinyPrompt(1, 10 + i, seed: 20 + i).InputIds).ToArray();
        BackboneInputs In(Tensor ids) => new(ids, null, new Dictionary<string, Tensor>());
        DecodeSession Open(int i) => DecodeSessions.Open(model, In(prompts[i]), In(prompts[i + 1]), 16, 0);
        try
        {
            var alone = Enumerable.Range(0, 4).Select(i => { using var s = Open(i); return MethodDecoder.Decode(model, s, Verdict.Safe, o, codec, refusal, [], 10 + i); }).ToArray();
            var sessions = Enumerable.Range(0, 4).Select(Open).ToArray();
            foreach (var s in sessions) scheduler.Join(s);
            var together = new DecodeOutcome[4];
            var threads = Enumerable.Range(0, 4).Select(i => new Thread(() =>
                together[i] = MethodDecoder.Decode(scheduler, model, sessions[i], Verdict.Safe, o, codec, refusal, [], 10 + i, null, default, null))).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            foreach (var s in sessions) s.Dispose();
            for (int i = 0; i < 4; i++) Assert.That(together[i].Tokens, Is.EqualTo(alone[i].Tokens), $"session {i}");
            var p = scheduler.Profile;
            long picks = together.Sum(r => r.Tokens.Length);
            TestContext.Out.WriteLine($"{picks} tokens in {p.Chains} chain runs over {p.Rounds} rounds");
            Assert.That(together.All(r => r.GuidedTokens == 5), Is.True, "every session guided its whole span");
            Assert.That(p.Chains, Is.EqualTo(p.Rounds), "one rule chain per round: the four sessions are always in the same phase");
            Assert.That(p.GuidedPicked, Is.EqualTo(picks), "every pick went through the shared chain");
            Assert.That(p.Rounds * 4, Is.EqualTo(picks), "four sessions per round");
        }
        finally { foreach (var t in prompts) t.Dispose(); }
    }

    [Test]
    public void AFullCache_FailsOnlyItsOwnRequest()
    {
        using var model = StepProbe.CreateTiny(2, CPU, ScalarType.Float32);
        using var batcher = new DecodeScheduler(model, 8);
        using var prompt = StepProbe.TinyPrompt(1, 12).InputIds;
        var inputs = new BackboneInputs(prompt, null, new Dictionary<string, Tensor>());
        var (small, ls) = model.Prefill(inputs, 1);   // room for one step only
        var (large, ll) = model.Prefill(inputs, 4);
        var (reference, lr) = model.Prefill(inputs, 4);
        long tok = ls.argmax(1).item<long>();
        using (reference)
        {
            var expected = GreedyAlone(model, reference, tok, 3, [], new HashSet<long>());
            using var a = SessionScripts.FeedThenGreedy(small, ls, tok, 3, [], new HashSet<long>());
            using var b = SessionScripts.FeedThenGreedy(large, ll, tok, 3, [], new HashSet<long>());
            Exception? smallError = null;
            batcher.Join(a); batcher.Join(b);
            var ready = new Barrier(2);
            var ta = new Thread(() => { ready.SignalAndWait(); try { batcher.Decode(a); } catch (Exception ex) { smallError = ex; } });
            var tb = new Thread(() => { ready.SignalAndWait(); batcher.Decode(b); });
            ta.Start(); tb.Start(); ta.Join(); tb.Join();
            Assert.That(smallError, Is.InstanceOf<InvalidOperationException>(), "the full cache's own error");
            Assert.That(b.Tokens, Is.EqualTo(expected), "the other request's steps are unaffected");
            Assert.That(batcher.Counts.Forwards, Is.LessThan(batcher.Counts.Steps), "the first round ran as one forward");
        }
    }
}
