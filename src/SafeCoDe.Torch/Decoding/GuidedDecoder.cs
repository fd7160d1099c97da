using SafeCoDe.Torch.Runtime;
using System.Diagnostics;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding.Batching;
using SafeCoDe.Torch.Decoding.Processors;
using SafeCoDe.Torch.Generation;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Safety;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding;

/// <summary>The real and noised branch of one prompt while they decode together.</summary>
public interface IBranches : IDisposable
{
    /// <summary>Current float32 logits, [2, vocab] while both branches run, [1, vocab] after <see cref="DropNoised"/>.</summary>
    Tensor Logits { get; }
    /// <summary>True while the noised branch is still decoding.</summary>
    bool HasNoised { get; }
    /// <summary>Feeds the same token to every live branch.</summary>
    void Step(long token);
    /// <summary>Stops the noised branch and frees its cache; the real branch continues without a new prefill.</summary>
    void DropNoised();
    /// <summary>Rolls the real branch back to <paramref name="length"/> cache positions (guided-token rollback).</summary>
    void Truncate(long length, Tensor replacementLogits);
    /// <summary>Cache positions filled in the real branch (prompt plus fed tokens).</summary>
    long Length { get; }
}

/// <summary>Both branches as rows of one batch: one prefill, one forward per guided step (the engine's way).</summary>
public sealed class BatchedBranches : IBranches
{
    private readonly IBackbone _model;
    private readonly DecodeState _state;
    private Tensor _logits;

    /// <param name="noised">Null for decoding without a second branch (vanilla).</param>
    public BatchedBranches(IBackbone model, BackboneInputs real, BackboneInputs? noised, int capacity, long padId)
        : this(model, real, noised, capacity, padId, null) { }

    /// <summary>As the public constructor; with a <paramref name="batcher"/> the steps run batched with other requests' (see <see cref="DecodeBatcher"/>).</summary>
    internal BatchedBranches(IBackbone model, BackboneInputs real, BackboneInputs? noised, int capacity, long padId, DecodeBatcher? batcher)
    {
        _model = model;
        using var scope = NewDisposeScope();
        var batch = noised is null ? real : BatchCollator.Collate([real, noised], padId);
        var (s, l) = model.Prefill(batch, capacity);
        _state = s;
        _logits = l.DetachFromDisposeScope();
        _batcher = batcher;
        _membership = batcher?.Join();
    }

    /// <summary>Branches from a state already prefilled (by the engine's <see cref="PrefillBatcher"/>); they own <paramref name="state"/> and <paramref name="logits"/>.</summary>
    internal BatchedBranches(IBackbone model, DecodeState state, Tensor logits, DecodeBatcher? batcher)
    {
        _model = model;
        _state = state;
        _logits = logits;
        _batcher = batcher;
        _membership = batcher?.Join();
    }

    private readonly DecodeBatcher? _batcher;
    private readonly IDisposable? _membership;

    /// <inheritdoc/>
    public Tensor Logits => _logits;
    /// <inheritdoc/>
    public bool HasNoised => _state.BatchSize == 2;
    /// <inheritdoc/>
    public long Length => _state.Length;

    /// <inheritdoc/>
    public void Step(long token)
    {
        // one token tensor per batch size, refilled in place (no host-made tensor per step)
        if (_token is null || _token.shape[0] != _state.BatchSize)
        {
            _token?.Dispose();
            _token = empty(_state.BatchSize, ScalarType.Int64, _model.Device).DetachFromDisposeScope();
        }
        using (var t = token.ToScalar()) _token.fill_(t);
        var next = _batcher is null ? _model.Step(_state, _token) : _batcher.Step(_state, _token);
        _logits.Dispose();
        _logits = next;
    }

    private Tensor? _token;

    /// <summary>True when greedy continuations can be handed to the cross-request batcher (<see cref="ContinueGreedy"/>).</summary>
    internal bool BatchesContinuations => _batcher is not null;

    /// <summary>
    /// Greedy decoding of the real branch alone (the noised one dropped) with the token picks shared across requests:
    /// the first token is picked here from the current logits, exactly as <see cref="Processors.DecodeLoop"/> would,
    /// and the rest by the batcher's rounds (<see cref="DecodeBatcher.ContinueGreedy"/>), which ban, pick, emit and
    /// feed every continuation's token at once. Same tokens as the one-request loop with a <c>RealRow → BanTokens →
    /// Argmax</c> phase.
    /// </summary>
    internal Processors.PhaseResult ContinueGreedy(int budget, IReadOnlySet<long> eos, long[] banned, Tensor? banIndex, Action<long>? emit, CancellationToken cancel)
    {
        if (_batcher is null || HasNoised) throw new InvalidOperationException("a batched continuation needs the batcher and the real branch alone");
        var tokens = new List<long>();
        if (budget <= 0) return new(tokens, false);
        cancel.ThrowIfCancellationRequested();
        long first;
        using (var scope = NewDisposeScope())
            first = Sampler.Suppress(_logits.narrow(0, 0, 1), banIndex).argmax(-1).item<long>();
        tokens.Add(first);
        emit?.Invoke(first);
        if (eos.Contains(first)) return new(tokens, true);
        if (budget == 1) return new(tokens, false);
        if (_token is null || _token.shape[0] != 1)
        {
            _token?.Dispose();
            _token = empty(1, ScalarType.Int64, _model.Device).DetachFromDisposeScope();
        }
        using (var f = first.ToScalar()) _token.fill_(f);
        var (more, stoppedAtEos, logits) = _batcher.ContinueGreedy(_state, _token, budget - 1, eos, banned, banIndex, emit, cancel);
        _logits.Dispose();
        _logits = logits;
        tokens.AddRange(more);
        return new(tokens, stoppedAtEos);
    }

    /// <summary>
    /// The guided phase handed to the batcher whole (<see cref="DecodeBatcher.Guide"/>): the batcher picks every guided
    /// token with the other guided requests' rows, drops the noised row at the end of guidance and, when the spec
    /// allows, runs the greedy continuation too. Afterwards the branches hold the real row alone and its last logits.
    /// </summary>
    internal GuidedOutcome GuideInBatcher(GuidedSpec spec, IReadOnlySet<long> eos, long[] banned, Tensor? banIndex, Action<long>? emit, CancellationToken cancel)
    {
        if (_batcher is null || !HasNoised) throw new InvalidOperationException("a batched guided phase needs the batcher and both branches");
        cancel.ThrowIfCancellationRequested();
        var outcome = _batcher.Guide(_state, _logits, spec, eos, banned, banIndex, emit, cancel);
        _logits.Dispose();
        _logits = outcome.Logits;
        return outcome;
    }

    /// <inheritdoc/>
    /// <remarks>Row 0 of the cache and of the logits stay views of the batch's storage: nothing is copied.</remarks>
    public void DropNoised()
    {
        if (!HasNoised) return;
        _state.KeepRows([0]);
        var l = _logits.narrow(0, 0, 1);
        _logits.Dispose();
        _logits = l;
    }

    /// <inheritdoc/>
    public void Truncate(long length, Tensor replacementLogits)
    {
        _state.Truncate(length);
        _logits.Dispose();
        _logits = replacementLogits.clone();
    }

    /// <summary>Frees the decode state and the current logits.</summary>
    public void Dispose() { _membership?.Dispose(); _state.Dispose(); _logits.Dispose(); _token?.Dispose(); }
}

/// <summary>The branches as two batch-1 passes with their own caches (what VCD and the reference do); for comparison.</summary>
public sealed class SeparateBranches : IBranches
{
    private readonly IBackbone _model;
    private readonly DecodeState _real;
    private DecodeState? _noised;
    private Tensor _lr, _ln;
    private Tensor? _both;

    /// <summary>Prefills the real and the noised prompt separately, each with room for <paramref name="capacity"/> new tokens.</summary>
    public SeparateBranches(IBackbone model, BackboneInputs real, BackboneInputs noised, int capacity)
    {
        _model = model;
        (_real, _lr) = model.Prefill(real, capacity);
        (_noised, _ln) = model.Prefill(noised, capacity);
    }

    /// <inheritdoc/>
    public Tensor Logits => _both ??= (_noised is null ? _lr.alias() : cat([_lr, _ln], 0)).DetachFromDisposeScope();
    /// <inheritdoc/>
    public bool HasNoised => _noised is not null;
    /// <inheritdoc/>
    public long Length => _real.Length;

    /// <inheritdoc/>
    public void Step(long token)
    {
        using var value = token.ToScalar();
        using var t = full(1, value, ScalarType.Int64, _model.Device);
        Reset();
        var r = _model.Step(_real, t); _lr.Dispose(); _lr = r;
        if (_noised is not null) { var n = _model.Step(_noised, t); _ln.Dispose(); _ln = n; }
    }

    /// <inheritdoc/>
    public void DropNoised()
    {
        Reset();
        _noised?.Dispose();
        _noised = null;
    }

    /// <inheritdoc/>
    public void Truncate(long length, Tensor replacementLogits)
    {
        Reset();
        _real.Truncate(length);
        _lr.Dispose();
        _lr = replacementLogits.clone();
    }

    private void Reset() { _both?.Dispose(); _both = null; }

    /// <summary>Frees both decode states and the logits.</summary>
    public void Dispose() { Reset(); _real.Dispose(); _noised?.Dispose(); _lr.Dispose(); _ln.Dispose(); }
}

/// <summary>What one decode produced and how.</summary>
public sealed record GuidedResult(
    long[] Tokens, int GuidedTokens, string? ForcedPhrase, bool StoppedAtEos, double AlphaUsed, int Budget,
    bool RolledBack, double PrefillMs, double GuidedMs, double ContinuationMs, int ContinuationTokens);

/// <summary>
/// SafeCoDe decoding (and VCD / vanilla) over any backbone. Guided steps contrast the real and noised branch and
/// modulate refusal tokens by the verdict; then the noised branch is dropped and the real branch continues from
/// its cache. Every phase is a logits chain (<see cref="Processors"/>) run by the one <see cref="DecodeLoop"/>.
/// Host synchronisation: one per guided step (the phrase, quote and early-exit rules read text) and one per
/// continuation token.
/// </summary>
public static class GuidedDecoder
{
    /// <summary>Everything one decode needs, built once per request.</summary>
    private sealed class DecodeRun : IDisposable
    {
        public required IBackbone Model { get; init; }
        public required IBranches Branches { get; init; }
        public required SafeCoDeOptions O { get; init; }
        public required Verdict Verdict { get; init; }
        public required ITokenCodec Codec { get; init; }
        public required RefusalTokens Refusal { get; init; }
        public required IReadOnlySet<long> Eos { get; init; }
        public required int Budget { get; init; }
        public required int Cap { get; init; }
        public required Tensor RefusalIds { get; init; }
        public required Tensor? BannedIdx { get; init; }
        public required long[] Banned { get; init; }
        public required torch.Generator? Gen { get; init; }
        public Action<long>? OnToken { get; init; }
        public CancellationToken Cancel { get; init; }
        public readonly List<long> Tokens = [];

        public void Dispose() { RefusalIds.Dispose(); BannedIdx?.Dispose(); Gen?.Dispose(); }
    }

    /// <param name="branches">Prefilled branches ([real, noised]; for vanilla only the real row is used).</param>
    /// <param name="onToken">Called with each new token as soon as it is chosen (guided ones included).</param>
    public static GuidedResult Run(IBackbone model, IBranches branches, Verdict verdict, SafeCoDeOptions o, ITokenCodec codec,
        RefusalTokens refusal, IReadOnlyList<long> eosIds, int promptLength, Action<long>? onToken = null, CancellationToken cancel = default,
        IReadOnlyList<long>? bannedIds = null)
    {
        o.Validate();
        return Decode(model, branches, verdict, o, codec, refusal, eosIds, o.Budget(model.Family, verdict, promptLength), onToken, cancel, bannedIds);
    }

    /// <summary><see cref="Run"/> with options already validated and the length budget already worked out (the engine's path).</summary>
    internal static GuidedResult Decode(IBackbone model, IBranches branches, Verdict verdict, SafeCoDeOptions o, ITokenCodec codec,
        RefusalTokens refusal, IReadOnlyList<long> eosIds, int budget, Action<long>? onToken, CancellationToken cancel, IReadOnlyList<long>? bannedIds)
    {
        var sw = Stopwatch.StartNew();
        long started = Stopwatch.GetTimestamp();
        using var r = Prepare(model, branches, verdict, o, codec, refusal, eosIds, budget, onToken, cancel, bannedIds);
        if (o.Mode != DecodeMode.SafeCoDe)
        {
            // VCD contrasts every token; vanilla decodes the real branch alone
            if (o.Mode == DecodeMode.Vanilla) branches.DropNoised();
            var c = Continue(r, Math.Min(r.Budget, r.Cap));
            double alphaUsed = o.Mode == DecodeMode.Vcd ? o.Alpha : 0;
            return new GuidedResult(r.Tokens.ToArray(), 0, null, c.StoppedAtEos, alphaUsed, r.Budget, false, 0, 0, sw.Elapsed.TotalMilliseconds, c.Tokens.Count);
        }
        // SafeCoDe: guided steps (a forced phrase, or contrast + refusal modulation), rollback, then the continuation
        bool unsafePath = verdict == Verdict.Unsafe && (!o.UnsafeNeedsTwoSteps || o.MaxSteps >= 2);
        double alpha = !unsafePath && o.HalveAlphaOnSafe ? o.Alpha * 0.5 : o.Alpha;
        long lengthBeforeGuidance = branches.Length;
        using var firstLogits = RealRowCopy(branches.Logits);
        var forced = unsafePath && o.Unsafe == UnsafeStrategy.ForcePhrase ? ForcePhrase(r, alpha) : null;
        if (forced is null && GuideInBatcher(r, alpha, unsafePath) is { } driven)
        {
            double endedMs = Stopwatch.GetElapsedTime(started, driven.GuidanceEnded).TotalMilliseconds;
            if (driven.Continued)
                return new GuidedResult(r.Tokens.ToArray(), driven.Guided.Count, null, driven.StoppedAtEos, alpha, r.Budget, false, 0, endedMs,
                    sw.Elapsed.TotalMilliseconds - endedMs, driven.Continuation.Count);
            r.Tokens.AddRange(driven.Guided); // handed back at the end of guidance: rollback and the continuation as below
        }
        else if (forced is null) Guide(r, alpha, unsafePath);
        branches.DropNoised();
        double guidedMs = sw.Elapsed.TotalMilliseconds;
        int guided = r.Tokens.Count;
        bool rolledBack = o.CorruptionRollback && guided > 0 && Corrupt(model.Family, r.Tokens, codec);
        if (rolledBack) guided = RollBack(r, lengthBeforeGuidance, firstLogits);
        foreach (var t in r.Tokens) onToken?.Invoke(t);
        if (r.Tokens.Count > 0) branches.Step(r.Tokens[^1]);
        var cont = Continue(r, Math.Min(r.Budget, r.Cap - r.Tokens.Count));
        return new GuidedResult(r.Tokens.ToArray(), guided, forced, cont.StoppedAtEos, alpha, r.Budget, rolledBack, 0, guidedMs,
            sw.Elapsed.TotalMilliseconds - guidedMs, cont.Tokens.Count);
    }

    private static DecodeRun Prepare(IBackbone model, IBranches branches, Verdict verdict, SafeCoDeOptions o, ITokenCodec codec, RefusalTokens refusal,
        IReadOnlyList<long> eosIds, int budget, Action<long>? onToken, CancellationToken cancel, IReadOnlyList<long>? bannedIds)
    {
        var banned = (bannedIds ?? []).Where(id => id >= 0 && id < model.VocabSize).Distinct().ToArray();
        int cap = o.MaxTotalTokens ?? int.MaxValue; // all tokens, guided ones included
        return new DecodeRun
        {
            Model = model, Branches = branches, O = o, Verdict = verdict, Codec = codec, Refusal = refusal, Eos = eosIds.ToHashSet(),
            Budget = budget, Cap = cap,
            // index tensors built once per request (a per-step upload would be a host sync on CUDA)
            RefusalIds = Sampler.Index(refusal.Union, model.Device) ?? empty(0, ScalarType.Int64, model.Device).DetachFromDisposeScope(),
            BannedIdx = Sampler.Index(banned, model.Device), Banned = banned,
            // a CPU generator and CPU draws: the same seed gives the same tokens on every device
            Gen = o.Greedy ? null : new torch.Generator(o.Seed is { } s ? (ulong)s : (ulong)Random.Shared.NextInt64()),
            OnToken = onToken, Cancel = cancel,
        };
    }

    private static Tensor RealRowCopy(Tensor logits)
    {
        using var row = logits.narrow(0, 0, 1);
        return row.clone();
    }

    /// <summary>The contrast's distribution over the vocabulary (placeholders banned): what the guided rules start from.</summary>
    private static LogitsChain ContrastChain(DecodeRun r, double alpha) => new(new SafeCoDeContrast(alpha), new BanTokens(r.BannedIdx), new Softmax());

    /// <summary>Unsafe, reference form: the contrast ranks the refusal phrases and the best one is emitted as the guided tokens.</summary>
    private static string? ForcePhrase(DecodeRun r, double alpha)
    {
        int maxSteps = Math.Min(r.O.MaxSteps, r.Cap);
        if (maxSteps <= 0) return null;
        float[] probs;
        using (var scope = NewDisposeScope())
            probs = ContrastChain(r, alpha).Process(r.Branches.Logits).cpu().data<float>().ToArray();
        int pick = r.Refusal.ChoosePhrase(probs, r.O.TopK, r.O.PreferredKeywords);
        if (pick < 0) return null;
        var ids = r.Refusal.PhraseIds[pick].Take(maxSteps).ToArray();
        r.Branches.DropNoised(); // the contrast chose the phrase; nothing more to contrast
        var phase = new DecodePhase(new LogitsChain(), new Forced(ids));
        r.Tokens.AddRange(DecodeLoop.Run(r.Branches, phase, ids.Length, new HashSet<long>(), null, r.Cancel).Tokens);
        return r.Refusal.Phrases[pick];
    }

    /// <summary>Guided steps: contrast, refusal suppression (safe) or boost (unsafe), greedy first token with the quote skip, early exit.</summary>
    private static void Guide(DecodeRun r, double alpha, bool unsafePath)
    {
        var o = r.O;
        int maxSteps = Math.Min(o.MaxSteps, r.Cap);
        if (maxSteps <= 0) return;
        using var scale = unsafePath ? RefusalScale.Boost(r.RefusalIds, o.LambdaBoost) : RefusalScale.Suppress(r.RefusalIds, o.LambdaSupp);
        var chain = ContrastChain(r, alpha).Then(scale);
        var greedy = new TopTwo(r.Codec, quoteSkip: !unsafePath && o.QuoteSkip);
        ITokenSelector rest = o.Greedy ? greedy
            : new After(new TemperedDistribution(unsafePath ? o.GuidedTemperatureUnsafe : o.GuidedTemperatureSafe), new Multinomial(r.Gen));
        var phase = new DecodePhase(chain, new FirstThen(greedy, rest),
            o.EarlyExit ? (tokens, step) => step >= 1 && NaturalStart(r.Codec.Decode(tokens)) : null);
        // streamed after the rollback check
        r.Tokens.AddRange(DecodeLoop.Run(r.Branches, phase, maxSteps, new HashSet<long>(), null, r.Cancel).Tokens);
    }

    /// <summary>
    /// <see cref="Guide"/> driven by the engine's batcher when the branches decode in it (null otherwise): the same
    /// chain, selectors and early exit, picked with the other requests' guided rows. When the guided tokens need no
    /// rollback and the continuation is greedy, the batcher goes on with it (the tokens stream from its round); else
    /// the request takes over at the end of guidance.
    /// </summary>
    private static GuidedOutcome? GuideInBatcher(DecodeRun r, double alpha, bool unsafePath)
    {
        var o = r.O;
        int maxSteps = Math.Min(o.MaxSteps, r.Cap);
        if (maxSteps <= 0 || r.Branches is not BatchedBranches { BatchesContinuations: true, HasNoised: true } batched) return null;
        using var scale = unsafePath ? RefusalScale.Boost(r.RefusalIds, o.LambdaBoost) : RefusalScale.Suppress(r.RefusalIds, o.LambdaSupp);
        var logits = batched.Logits;
        // the continuation after guidance is greedy exactly when Continue's temperature is 0 (see there)
        bool greedyContinuation = (o.Greedy ? 0 : r.Verdict == Verdict.Unsafe ? o.TemperatureUnsafe : o.TemperatureSafe) <= 0;
        var spec = new GuidedSpec
        {
            Alpha = alpha, Scale = scale.Vector(logits.shape[^1], logits.device), ScaleKey = (scale.Factor, r.Refusal), MaxSteps = maxSteps,
            QuoteSkip = !unsafePath && o.QuoteSkip, Codec = r.Codec,
            Sampled = o.Greedy ? null : new After(new TemperedDistribution(unsafePath ? o.GuidedTemperatureUnsafe : o.GuidedTemperatureSafe), new Multinomial(r.Gen)),
            StopAfter = o.EarlyExit ? (tokens, step) => step >= 1 && NaturalStart(r.Codec.Decode(tokens)) : null,
            ContinueGreedily = tokens => !greedyContinuation || (o.CorruptionRollback && Corrupt(r.Model.Family, tokens, r.Codec)) ? 0
                : Math.Min(r.Budget, r.Cap - tokens.Count),
            OnGuided = tokens => { foreach (var t in tokens) { r.Tokens.Add(t); r.OnToken?.Invoke(t); } },
        };
        Action<long> emit = t => { r.Tokens.Add(t); r.OnToken?.Invoke(t); };
        return batched.GuideInBatcher(spec, r.Eos, r.Banned, r.BannedIdx, emit, r.Cancel);
    }

    /// <summary>Drops the corrupt guided tokens, keeping the first one when it is clean (the reference's intent); returns how many stay.</summary>
    private static int RollBack(DecodeRun r, long lengthBeforeGuidance, Tensor firstLogits)
    {
        int keep = r.Codec.Decode([r.Tokens[0]], skipSpecialTokens: true).Contains('|') ? 0 : 1;
        r.Branches.Truncate(lengthBeforeGuidance, firstLogits);
        r.Tokens.RemoveRange(keep, r.Tokens.Count - keep);
        return keep;
    }

    /// <summary>Plain sampling (or VCD's contrast while the noised branch lives) on the live branches until EOS or the budget.</summary>
    private static PhaseResult Continue(DecodeRun r, int budget)
    {
        var o = r.O;
        bool unsafeSampling = r.Verdict == Verdict.Unsafe && o.Mode == DecodeMode.SafeCoDe;
        double temperature = o.Greedy ? 0 : unsafeSampling ? o.TemperatureUnsafe : o.TemperatureSafe;
        Action<long> emit = t => { r.Tokens.Add(t); r.OnToken?.Invoke(t); };
        // greedy on the real row alone: the batcher picks every request's token in one shared round
        if (temperature <= 0 && o.Mode != DecodeMode.Vcd && r.Branches is BatchedBranches { BatchesContinuations: true, HasNoised: false } batched)
            return batched.ContinueGreedy(budget, r.Eos, r.Banned, r.BannedIdx, emit, r.Cancel);
        ILogitsProcessor first = o.Mode == DecodeMode.Vcd ? new VcdContrast(o.Alpha, o.VcdBeta) : new RealRow();
        var chain = new LogitsChain(first, new BanTokens(r.BannedIdx));
        var phase = temperature <= 0
            ? new DecodePhase(chain, new Argmax())
            : new DecodePhase(chain.Then(new Temperature(temperature), new TopK(o.TopKSampling), new TopP(unsafeSampling ? o.TopPUnsafe : o.TopPSafe), new Softmax()),
                new Multinomial(r.Gen));
        return DecodeLoop.Run(r.Branches, phase, budget, r.Eos, emit, r.Cancel);
    }

    /// <summary>The reference's early exit: ≥ 2 words and a first word of ≥ 2 characters starting with an upper-case letter.</summary>
    public static bool NaturalStart(string prefix)
    {
        var words = prefix.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return words.Length >= 2 && words[0].Length >= 2 && char.IsUpper(words[0][0]);
    }

    /// <summary>
    /// The reference's "corruption" test: for Qwen a guided token decoding exactly to "|", "$" or "MS"; for the other
    /// families the first guided token's text (special tokens skipped) containing one of them (its batch_decode
    /// over a flat id list only ever sees the first token).
    /// </summary>
    public static bool Corrupt(string family, IReadOnlyList<long> guided, ITokenCodec codec)
    {
        if (ModelFamilies.TryGet(family)?.RollbackChecksEveryToken == true)
            return guided.Any(t => codec.Decode([t]) is "|" or "$" or "MS");
        var first = codec.Decode([guided[0]], skipSpecialTokens: true).Trim();
        return first.Contains('|') || first.Contains('$') || first.Contains("MS");
    }
}
