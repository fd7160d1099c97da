using System.Diagnostics;
using SafeCoDe.Torch.Checkpoints;
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
    {
        _model = model;
        using var scope = NewDisposeScope();
        var batch = noised is null ? real : BatchCollator.Collate([real, noised], padId);
        var (s, l) = model.Prefill(batch, capacity);
        _state = s;
        _logits = l.DetachFromDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor Logits => _logits;
    /// <inheritdoc/>
    public bool HasNoised => _state.BatchSize == 2;
    /// <inheritdoc/>
    public long Length => _state.Length;

    /// <inheritdoc/>
    public void Step(long token)
    {
        using var t = full(_state.BatchSize, token, ScalarType.Int64, _model.Device);
        var next = _model.Step(_state, t);
        _logits.Dispose();
        _logits = next;
    }

    /// <inheritdoc/>
    public void DropNoised()
    {
        if (!HasNoised) return;
        _state.KeepRows([0]);
        using var row = _logits.narrow(0, 0, 1);
        var l = row.clone();
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
    public void Dispose() { _state.Dispose(); _logits.Dispose(); }
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
        using var t = full(1, token, ScalarType.Int64, _model.Device);
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
/// its cache. Host synchronisation: one per guided step (the phrase, quote and early-exit rules read text) and one
/// per continuation token.
/// </summary>
public static class GuidedDecoder
{
    private static readonly HashSet<string> QuoteTokens = ["\"", "'", "\u201C", "\u201D", "\u2018", "\u2019", "`", "\u00B4"];

    /// <param name="branches">Prefilled branches ([real, noised]; for vanilla only the real row is used).</param>
    /// <param name="onToken">Called with each new token as soon as it is chosen (guided ones included).</param>
    public static GuidedResult Run(IBackbone model, IBranches branches, Verdict verdict, SafeCoDeOptions o, ITokenCodec codec,
        RefusalTokens refusal, IReadOnlyList<long> eosIds, int promptLength, Action<long>? onToken = null, CancellationToken cancel = default,
        IReadOnlyList<long>? bannedIds = null)
    {
        o.Validate();
        var banned = (bannedIds ?? []).Where(id => id >= 0 && id < model.VocabSize).Distinct().ToArray();
        var sw = Stopwatch.StartNew();
        // a CPU generator and CPU draws: the same seed gives the same tokens on every device
        using var gen = o.Greedy ? null : new torch.Generator(o.Seed is { } s ? (ulong)s : (ulong)Random.Shared.NextInt64());
        var eos = eosIds.ToHashSet();
        var tokens = new List<long>();
        int budget = o.Budget(model.Family, verdict, promptLength);
        int cap = o.MaxTotalTokens ?? int.MaxValue; // all tokens, guided ones included
        int maxSteps = Math.Min(o.MaxSteps, cap);
        double alpha = o.Alpha;
        string? forced = null;
        bool rolledBack = false;
        int guided = 0;
        // index tensors built once per request (a per-step upload would be a host sync on CUDA)
        using var refusalIds = Sampler.Index(refusal.Union, model.Device) ?? empty(0, ScalarType.Int64, model.Device).DetachFromDisposeScope();
        using var bannedIdx = Sampler.Index(banned, model.Device);

        void Emit(long t) { tokens.Add(t); onToken?.Invoke(t); }
        void Guide(long t) { tokens.Add(t); guided++; } // streamed after the rollback check

        if (o.Mode == DecodeMode.Vcd)
        {
            var vr = Continue(model, branches, o, verdict, Math.Min(budget, cap), eos, gen, Emit, cancel, vcd: true, bannedIdx);
            return new GuidedResult(tokens.ToArray(), 0, null, vr.eos, o.Alpha, budget, false, 0, 0, sw.Elapsed.TotalMilliseconds, vr.count);
        }
        if (o.Mode == DecodeMode.Vanilla)
        {
            branches.DropNoised();
            var vr = Continue(model, branches, o, verdict, Math.Min(budget, cap), eos, gen, Emit, cancel, vcd: false, bannedIdx);
            return new GuidedResult(tokens.ToArray(), 0, null, vr.eos, 0, budget, false, 0, 0, sw.Elapsed.TotalMilliseconds, vr.count);
        }

        // --- SafeCoDe guided steps ---
        bool unsafePath = verdict == Verdict.Unsafe && (!o.UnsafeNeedsTwoSteps || o.MaxSteps >= 2);
        if (!unsafePath && o.HalveAlphaOnSafe) alpha *= 0.5;
        long lengthBeforeGuidance = branches.Length;
        Tensor firstLogits;
        using (var row = branches.Logits.narrow(0, 0, 1)) firstLogits = row.clone();
        using var _first = firstLogits;

        if (unsafePath && o.Unsafe == UnsafeStrategy.ForcePhrase && maxSteps > 0)
        {
            float[] probs;
            using (var scope = NewDisposeScope())
                probs = Sampler.Suppress(Contrast(branches.Logits, alpha), bannedIdx).softmax(-1).cpu().data<float>().ToArray();
            int pick = refusal.ChoosePhrase(probs, o.TopK, o.PreferredKeywords);
            if (pick >= 0)
            {
                forced = refusal.Phrases[pick];
                var ids = refusal.PhraseIds[pick].Take(maxSteps).ToArray();
                branches.DropNoised(); // the contrast chose the phrase; nothing more to contrast
                for (int i = 0; i < ids.Length; i++)
                {
                    Guide(ids[i]);
                    if (i < ids.Length - 1) branches.Step(ids[i]);
                }
            }
        }
        if (forced is null && maxSteps > 0)
        {
            for (int step = 0; step < maxSteps; step++)
            {
                cancel.ThrowIfCancellationRequested();
                if (step > 0) branches.Step(tokens[^1]);
                long tok;
                using (var scope = NewDisposeScope())
                {
                    var p = Sampler.Suppress(Contrast(branches.Logits, alpha), bannedIdx).softmax(-1);
                    p = unsafePath ? LogitsOps.BoostRefusals(p, refusalIds, o.LambdaBoost) : LogitsOps.SuppressRefusals(p, refusalIds, o.LambdaSupp);
                    if (step == 0 || o.Greedy)
                    {
                        var top = p.topk(Math.Min(2, (int)p.shape[0])).indexes.cpu().data<long>().ToArray(); // the reference looks at the best two
                        tok = top[0];
                        if (step == 0 && !unsafePath && o.QuoteSkip && top.Length > 1 && QuoteTokens.Contains(codec.Decode([top[0]]).Trim()))
                            tok = top[1];
                    }
                    else
                    {
                        var q = LogitsOps.TemperedDistribution(p, unsafePath ? o.GuidedTemperatureUnsafe : o.GuidedTemperatureSafe);
                        tok = multinomial(q.cpu(), 1, false, gen).item<long>();
                    }
                }
                Guide(tok);
                if (o.EarlyExit && step >= 1 && NaturalStart(codec.Decode(tokens)))
                    break;
            }
        }
        branches.DropNoised();
        double guidedMs = sw.Elapsed.TotalMilliseconds;

        if (o.CorruptionRollback && guided > 0 && Corrupt(model.Family, tokens, codec))
        {
            // keep the first guided token if it is clean, else none (the reference's intent)
            int keep = codec.Decode([tokens[0]], skipSpecialTokens: true).Contains('|') ? 0 : 1;
            branches.Truncate(lengthBeforeGuidance, firstLogits);
            tokens.RemoveRange(keep, tokens.Count - keep);
            guided = keep;
            rolledBack = true;
        }
        foreach (var t in tokens) onToken?.Invoke(t);

        if (tokens.Count > 0) branches.Step(tokens[^1]);
        var c = Continue(model, branches, o, verdict, Math.Min(budget, cap - tokens.Count), eos, gen, Emit, cancel, vcd: false, bannedIdx);
        return new GuidedResult(tokens.ToArray(), guided, forced, c.eos, alpha, budget, rolledBack, 0, guidedMs,
            sw.Elapsed.TotalMilliseconds - guidedMs, c.count);
    }

    private static Tensor Contrast(Tensor logits, double alpha) => LogitsOps.SafeCoDeContrast(logits[0], logits[1], alpha);

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

    /// <summary>Plain sampling (or VCD contrast) on the live branches until EOS or the budget.</summary>
    private static (bool eos, int count) Continue(IBackbone model, IBranches branches, SafeCoDeOptions o, Verdict verdict, int budget,
        HashSet<long> eos, torch.Generator? gen, Action<long> emit, CancellationToken cancel, bool vcd, Tensor? banned)
    {
        var sampling = new SamplingOptions
        {
            MaxNewTokens = Math.Max(budget, 0),
            Temperature = o.Greedy ? 0 : verdict == Verdict.Unsafe && o.Mode == DecodeMode.SafeCoDe ? o.TemperatureUnsafe : o.TemperatureSafe,
            TopP = verdict == Verdict.Unsafe && o.Mode == DecodeMode.SafeCoDe ? o.TopPUnsafe : o.TopPSafe,
            TopK = o.TopKSampling,
        };
        for (int i = 0; i < budget; i++)
        {
            cancel.ThrowIfCancellationRequested();
            long tok;
            using (var scope = NewDisposeScope())
            {
                var l = vcd && branches.HasNoised
                    ? LogitsOps.VcdContrast(branches.Logits.narrow(0, 0, 1), branches.Logits.narrow(0, 1, 1), o.Alpha, o.VcdBeta)
                    : branches.Logits.narrow(0, 0, 1);
                tok = Sampler.Choose(Sampler.Suppress(l, banned), sampling, gen).item<long>(); // the one host sync of this token
            }
            emit(tok);
            if (eos.Contains(tok)) return (true, i + 1);
            if (i < budget - 1) branches.Step(tok);
        }
        return (false, budget);
    }
}
